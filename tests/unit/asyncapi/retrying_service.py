"""Listeners with non-blocking retries (retry topics), for the AsyncAPI document."""

from pydantic import BaseModel

from kafkaboot import kafka_listener, retryable_topic


class Payment(BaseModel):
    id: int


@kafka_listener("payments", group_id="paying")
@retryable_topic(attempts=3)
async def pay(payment: Payment) -> None:
    """Takes a payment."""


@kafka_listener("refunds", group_id="refunding")
@retryable_topic(attempts=2, dlt=False)
async def refund(payment: Payment) -> None:
    """Refunds a payment; given up on after one retry, with no dead-letter topic."""
