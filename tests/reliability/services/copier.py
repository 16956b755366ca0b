"""A consume-process-produce service for the transactions scenario: each message of
$SOURCE_TOPIC is copied to $SINK_TOPIC inside the listener's transaction (its send and its
offset commit together), as a Spring Kafka service with a transaction-id-prefix does."""

import os

from dependency_injector.wiring import Provide, inject

from kafkaboot import kafka_listener
from kafkaboot.di import ApplicationContainer
from kafkaboot.template import KafkaTemplate
from sample_producer_service.models import Message

SINK = os.environ["SINK_TOPIC"]


@kafka_listener("${SOURCE_TOPIC}", id="copier", group_id="${EVENTS_GROUP}")
@inject
async def copy(
    message: Message, template: KafkaTemplate = Provide[ApplicationContainer.template]
) -> None:
    await template.send(SINK, message, key=message.customer_id)
