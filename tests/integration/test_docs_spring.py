"""docs/spring.md's example: the Spring Boot orders service's application.yml, unchanged
(SASL_SSL, a JKS trust store, a PKCS12 key store, SCRAM in sasl.jaas.config, JSON with type
headers, manual_immediate), runs the ported kafkaboot service on the secured broker."""

import json
import sys
from pathlib import Path

import pytest

from kafkaboot.application import KafkaBootApplication

from .kafka_helpers import create_topic, produce, read_all, wait_for, wait_for_committed

SNIPPETS = Path(__file__).parents[2] / "docs" / "snippets"
pytestmark = pytest.mark.asyncio


@pytest.fixture
def service(secured_cluster, monkeypatch):
    """The snippet module, imported by name as ``kafkaboot run spring_orders`` would."""
    secured = secured_cluster
    environment = {
        "KAFKA_BROKERS": secured.bootstrap_servers,  # The SASL_SSL listener.
        "KAFKA_TRUSTSTORE": str(secured.truststore_jks),
        "KAFKA_TRUSTSTORE_PASSWORD": secured.store_password,
        "KAFKA_KEYSTORE": str(secured.keystore_p12),
        "KAFKA_KEYSTORE_PASSWORD": secured.store_password,
        "KAFKA_USER": secured.scram_user,
        "KAFKA_PASSWORD": secured.scram_password,
        # The one setting a Spring consumer without a default type needs: write the Java
        # class name as __TypeId__ (docs/spring.md, "Type headers").
        "SPRING_KAFKA_PRODUCER_PROPERTIES_SPRING_JSON_TYPE_MAPPING": (
            "com.example.orders.OrderConfirmed:spring_orders.OrderConfirmed"
        ),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(SNIPPETS))
    monkeypatch.delitem(sys.modules, "spring_orders", raising=False)
    import spring_orders

    yield spring_orders
    sys.modules.pop("spring_orders", None)


async def test_the_spring_application_yml_runs_the_ported_service_on_sasl_ssl(
    secured_cluster, service, monkeypatch
):
    plain = secured_cluster.plaintext_bootstrap_servers  # The test's own clients.
    orders = await create_topic(plain, prefix="orders")
    payments = await create_topic(plain, prefix="payments")
    confirmations = await create_topic(plain, prefix="confirmations")
    monkeypatch.setenv("ORDERS_TOPIC", orders)
    monkeypatch.setenv("PAYMENTS_TOPIC", payments)
    monkeypatch.setenv("CONFIRMATIONS_TOPIC", confirmations)
    spring_type = [("__TypeId__", b"com.example.orders.Order")]  # As Spring's JsonSerializer.
    await produce(
        plain,
        orders,
        [b'{"id": 1, "item": "tea", "quantity": 2}', b'{"id": 2, "item": "jam", "quantity": 0}'],
        headers=spring_type,
        key=b"customer-7",
    )
    await produce(plain, payments, [b'{"id": 7, "amount": -1}'])

    application = KafkaBootApplication(
        config=SNIPPETS / "spring_application.yml", modules=[service]
    )
    async with application:
        await wait_for(lambda: service.dead_payments, message="the dead payment")
        await wait_for_committed(plain, "orders", orders, {0: 2})

    [confirmation] = await read_all(plain, confirmations, 1)
    assert confirmation.key == b"customer-7"
    assert json.loads(confirmation.value) == {"order_id": 1, "item": "tea"}
    assert dict(confirmation.headers)["__TypeId__"] == b"com.example.orders.OrderConfirmed"

    [dead_order] = await read_all(plain, f"{orders}-dlt", 1)
    headers = dict(dead_order.headers)
    assert json.loads(dead_order.value)["id"] == 2
    assert headers["kafka_dlt-original-topic"] == orders.encode()
    assert headers["kafka_dlt-exception-fqcn"] == (
        b"org.springframework.kafka.listener.ListenerExecutionFailedException"
    )
    assert headers["kafka_dlt-exception-cause-fqcn"] == b"spring_orders.InvalidOrder"
    assert headers["kafka_dlt-exception-message"].startswith(b"Listener failed; order 2")

    assert service.dead_payments == [service.Payment(id=7, amount=-1)]
    [dead_payment] = await read_all(plain, f"{payments}-dlt", 1)
    chain = dict(dead_payment.headers)
    assert chain["kafka_original-topic"] == payments.encode()
    assert chain["kafka_exception-cause-fqcn"] == b"spring_orders.PaymentDeclined"
