"""Transactions: all-or-nothing sends, and exactly-once consume-process-produce."""

from kafkaboot import KafkaBootSettings, ListenerRegistry
from kafkaboot.template import KafkaTemplate


async def transfer(template: KafkaTemplate, topic: str) -> None:
    # Needs kafka.producer.transaction-id-prefix. Both records commit, or neither does.
    async with template.transaction():
        await template.send(topic, {"account": "a", "amount": -10})
        await template.send(topic, {"account": "b", "amount": +10})


def exactly_once(
    settings: KafkaBootSettings, template: KafkaTemplate, source: str, sink: str
) -> ListenerRegistry:
    # With a transactional template, each record's sends and its offset commit together.
    registry = ListenerRegistry(settings, template=template)

    @registry.listener(source, group_id="enricher")
    async def enrich(event: dict) -> None:
        await template.send(sink, event | {"enriched": True})

    return registry
