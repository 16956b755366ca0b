"""A service with one of each thing the AsyncAPI document describes."""

from collections.abc import AsyncIterator
from typing import Annotated

from pydantic import BaseModel

from kafkaboot import Header, Key, kafka_listener, publishes, send_to


class Order(BaseModel):
    id: int
    item: str


class Invoice(BaseModel):
    order_id: int
    amount: float


@kafka_listener("orders", group_id="billing")
@send_to("invoices")
async def bill(
    order: Order,
    customer: Annotated[str, Key],
    trace: Annotated[str | None, Header("trace-id")] = None,
) -> Invoice:
    """Bills an order."""
    return Invoice(order_id=order.id, amount=1.0)


@kafka_listener("invoices", group_id="ledger", batch=True)
async def book(invoices: list[Invoice]) -> None:
    """Books invoices, a poll at a time."""


@kafka_listener("quotes", group_id="quoting")
@send_to()
async def quote(order: Order) -> Invoice:
    """Answers a quote request on the topic the request names."""
    return Invoice(order_id=order.id, amount=2.0)


@kafka_listener(topic_pattern="audit-.*", group_id="audit")
async def audit(line: str) -> None:
    """Reads every audit topic."""


@publishes("orders", Order, key=str, description="an order taken over HTTP")
async def take_order(order: Order) -> None:
    """Sends an order (with the template, in a real service)."""


class Event(BaseModel):
    model_config = {"title": "Order Event"}  # Not a valid component key as it stands.

    order_id: int


@kafka_listener("lines", group_id="splitting")
@send_to("words")
async def split(line: str) -> AsyncIterator[Event]:
    """Sends one event per word: a generator's elements are the replies."""
    yield Event(order_id=1)


@kafka_listener("archive", group_id="archiving")
async def archive(value) -> None:  # type: ignore[no-untyped-def]
    """Keeps each record as the configured deserializer reads it (no type hint)."""
