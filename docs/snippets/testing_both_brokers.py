"""A billing service and its tests, written once and run on the in-memory Kafka and on
the real broker: an HTTP endpoint that publishes, a listener that bills, a dead-letter
path, and a rebalance listener."""

import uuid
from typing import Any

from aiokafka import TopicPartition
from fastapi import FastAPI
from pydantic import BaseModel

from kafkaboot import RebalanceListener
from kafkaboot.application import KafkaBootApplication
from kafkaboot.testing import (
    get_single_record,
    send_and_wait_handled,
    wait_for_assignment,
)


class Order(BaseModel):
    id: int
    amount: float


class Invoice(BaseModel):
    order_id: int
    amount: float


class Heard(RebalanceListener):
    """Remembers the partitions each assignment gave (the service would seek or warm up)."""

    def __init__(self) -> None:
        self.assigned: list[set[int]] = []

    def on_partitions_assigned(self, partitions: set[TopicPartition], consumer: Any) -> None:
        self.assigned.append({tp.partition for tp in partitions})


def billing_service(
    bootstrap: str, heard: Heard | None = None
) -> tuple[KafkaBootApplication, FastAPI, str, str]:
    """The service under test, on topics of its own: takes orders over HTTP, bills each by
    sending its invoice, and sends an order it cannot bill to ``<orders>-dlt``."""
    orders, invoices = f"orders-{uuid.uuid4().hex[:8]}", f"invoices-{uuid.uuid4().hex[:8]}"
    application = KafkaBootApplication(
        overrides={
            "kafka": {
                "bootstrap-servers": bootstrap,
                "consumer": {"auto-offset-reset": "earliest"},
                "topics": [{"name": orders, "partitions": 2}, {"name": invoices}],
                "listener": {
                    "error-handler": {
                        "backoff": {"initial": "10ms", "max-attempts": 2},
                        "dead-letter": {"enabled": True},
                    }
                },
            }
        }
    )
    http = FastAPI()

    @http.post("/orders", status_code=202)
    async def take(order: Order) -> dict[str, int]:
        result = await application.template.send_and_wait(orders, order, key=str(order.id))
        return {"partition": result.partition, "offset": result.offset}

    @application.registry.listener(orders, group_id="billing", rebalance_listener=heard)
    async def bill(order: Order) -> None:
        if order.amount < 0:
            raise ValueError(f"order {order.id} has a negative amount")
        invoice = Invoice(order_id=order.id, amount=round(order.amount * 1.2, 2))
        await application.template.send_and_wait(invoices, invoice, key=str(order.id))

    return application, http, orders, invoices


async def test_an_order_taken_over_http_is_billed(bootstrap: str, kafkaboot_app: Any) -> None:
    application, http, _, invoices = billing_service(bootstrap)
    service = await kafkaboot_app(application, bootstrap=bootstrap, app=http)
    response = await service.client.post("/orders", json={"id": 7, "amount": 10.0})
    assert response.status_code == 202
    record = await get_single_record(bootstrap, invoices)
    assert record.key == b"7"
    assert Invoice.model_validate_json(record.value) == Invoice(order_id=7, amount=12.0)


async def test_an_order_that_cannot_be_billed_is_dead_lettered(bootstrap: str) -> None:
    application, _, orders, _ = billing_service(bootstrap)
    async with application:
        await wait_for_assignment(application)
        # Returns once the listener has committed past it: here, after the error handler
        # gave up on it (two deliveries) and sent it to the dead-letter topic.
        await send_and_wait_handled(application, orders, Order(id=8, amount=-1.0), key="8")
    dead = await get_single_record(bootstrap, f"{orders}-dlt")
    assert Order.model_validate_json(dead.value) == Order(id=8, amount=-1.0)
    headers = dict(dead.headers)
    assert b"negative amount" in headers["kafka_dlt-exception-message"]
    assert headers["kafka_dlt-original-topic"] == orders.encode()


async def test_the_rebalance_listener_hears_its_partitions(bootstrap: str) -> None:
    heard = Heard()
    application, _, _, _ = billing_service(bootstrap, heard)
    async with application:
        await wait_for_assignment(application, partitions=2)
    assert heard.assigned[-1] == {0, 1}
