"""The Spring Boot orders service of docs/spring.md, ported to kafkaboot.

It runs with the Spring service's application.yml unchanged (spring_application.yml):

    kafkaboot run spring_orders --config spring_application.yml
"""

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from pydantic import BaseModel

from kafkaboot import (
    Acknowledgment,
    ConsumerRecord,
    DeadLetterPublishingRecoverer,
    DefaultErrorHandler,
    ExponentialBackOff,
    FixedBackOff,
    Key,
    Partition,
    dlt_handler,
    kafka_listener,
    retryable_topic,
)
from kafkaboot.di import ApplicationContainer
from kafkaboot.template import KafkaTemplate


class Order(BaseModel):  # com.example.orders.Order
    id: int
    item: str
    quantity: int


class OrderConfirmed(BaseModel):  # com.example.orders.OrderConfirmed
    order_id: int
    item: str


class Payment(BaseModel):  # com.example.orders.Payment
    id: int
    amount: float


class InvalidOrder(Exception):
    pass


class PaymentDeclined(Exception):
    pass


class OrdersErrorHandler(DefaultErrorHandler):
    """The DefaultErrorHandler bean: three deliveries 0.5 s apart, then <topic>-dlt."""

    @inject
    def __init__(self, template: KafkaTemplate = Provide[ApplicationContainer.template]) -> None:
        super().__init__(
            FixedBackOff(0.5, max_attempts=3),  # Spring: new FixedBackOff(500L, 2L)
            DeadLetterPublishingRecoverer(template),
        )


@kafka_listener("${app.topics.orders}", id="orders", error_handler=OrdersErrorHandler)
@inject
async def on_order(
    order: Order,
    key: Annotated[str, Key],
    partition: Annotated[int, Partition],
    ack: Acknowledgment,
    template: KafkaTemplate = Provide[ApplicationContainer.template],
) -> None:
    if order.quantity < 1:
        raise InvalidOrder(f"order {order.id} from partition {partition}: quantity < 1")
    confirmed = OrderConfirmed(order_id=order.id, item=order.item)
    await (await template.send_default(confirmed, key=key))  # kafka.template.default-topic
    ack.acknowledge()


dead_payments: list[Payment] = []


@retryable_topic(attempts=3, backoff=ExponentialBackOff(initial=0.2, multiplier=2))
# Spring's id is also the group id (idIsGroup); kafkaboot's is not, so name the group.
@kafka_listener("${app.topics.payments}", id="payments", group_id="payments")
async def on_payment(payment: Payment, ack: Acknowledgment) -> None:
    if payment.amount <= 0:
        raise PaymentDeclined(f"payment {payment.id}: amount {payment.amount}")
    ack.acknowledge()


@dlt_handler(on_payment)
async def on_dead_payment(record: ConsumerRecord[str, Payment], ack: Acknowledgment) -> None:
    dead_payments.append(record.value)
    ack.acknowledge()
