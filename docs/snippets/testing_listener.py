"""Testing a listener on a real broker: the application as it runs, per-test topics,
kafkaboot.testing's helpers to wait for the listener and read what it sent."""

import uuid

import pytest
from pydantic import BaseModel

from kafkaboot.application import KafkaBootApplication
from kafkaboot.testing import get_single_record, send_and_wait_handled, wait_for_assignment


class Order(BaseModel):
    id: int
    amount: float


class Invoice(BaseModel):
    order_id: int
    amount: float


def billing_service(bootstrap: str, orders: str, invoices: str) -> KafkaBootApplication:
    """The service under test: bills each order by sending its invoice."""
    app = KafkaBootApplication(
        overrides={
            "kafka": {
                "bootstrap-servers": bootstrap,
                "consumer": {"auto-offset-reset": "earliest"},
                "topics": [{"name": orders}, {"name": invoices}],  # Created at startup.
            }
        }
    )

    @app.registry.listener(orders, group_id="billing")
    async def bill(order: Order) -> None:
        invoice = Invoice(order_id=order.id, amount=round(order.amount * 1.2, 2))
        await app.template.send_and_wait(invoices, invoice, key=str(order.id))

    return app


@pytest.mark.asyncio
async def test_an_order_is_billed(kafka_bootstrap: str) -> None:
    orders, invoices = f"orders-{uuid.uuid4().hex[:8]}", f"invoices-{uuid.uuid4().hex[:8]}"
    app = billing_service(kafka_bootstrap, orders, invoices)
    async with app:
        await wait_for_assignment(app)  # In its group, partitions held.
        await send_and_wait_handled(app, orders, Order(id=7, amount=10.0))  # Handled, committed.
        record = await get_single_record(kafka_bootstrap, invoices)
    assert record.key == b"7"
    assert Invoice.model_validate_json(record.value) == Invoice(order_id=7, amount=12.0)
