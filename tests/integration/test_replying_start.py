"""ReplyingKafkaTemplate.start(): once it returns, a reply written at any moment after is seen.

The reply consumer has no group and reads from "latest". If start() returned before every
partition of the reply topic were assigned and its end offset fixed, a reply written in
between would lie before the position the consumer settles on later, be skipped, and its
request would time out. The tests write each reply the moment start() returns and repeat
start → reply over fresh templates, so that such a race has room to show.

aiokafka assigns every partition of a subscribed topic inside start() for a consumer without
a group, and ReplyingKafkaTemplate.start() then fixes each partition's position; take the
position step away and these tests fail in about half of the runs (a reply is written before
the fetcher has asked for the end offset, and the consumer starts after it).
"""

import asyncio
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaProducer

from kafkaboot import ListenerRegistry, load_settings
from kafkaboot.listener.decorator import send_to
from kafkaboot.listener.reply import CORRELATION_ID_HEADER, REPLY_TOPIC_HEADER
from kafkaboot.replying import ReplyingKafkaTemplate, ReplyTimeoutError
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import create_topic, unique

pytestmark = pytest.mark.asyncio

ROUNDS = 25
REPLY_WAIT = timedelta(seconds=3)  # A reply the consumer is positioned for comes in ms.
PARTITION_HEADER = "test-reply-partition"


def settings_for(bootstrap):
    return load_settings(environ={}, overrides={"kafka": {"bootstrap-servers": bootstrap}})


class InstantReplies:
    """Stands in for the KafkaTemplate (the ReplyingKafkaTemplate uses only ``settings`` and
    ``send_and_wait``) and answers a request before sending it: ``send_and_wait`` writes the
    reply itself (the request's value, on the partition its ``test-reply-partition`` header
    names) with a warmed-up producer that does not linger, and returns once the broker has
    it. So the reply is on the reply topic as early as anything can be after start()
    returns: no responder round trip gives a slow start time to catch up."""

    def __init__(self, bootstrap):
        self.settings = settings_for(bootstrap)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)

    async def __aenter__(self):
        await self.producer.start()
        return self

    async def __aexit__(self, *exc_info):
        await self.producer.stop()

    async def warm_up(self, topic, partitions):
        """Connect to the leaders and learn the topic's metadata before the rounds start."""
        sends = [self.producer.send_and_wait(topic, b"old", partition=p) for p in partitions]
        await asyncio.gather(*sends)

    async def send_and_wait(self, topic, value, *, key=None, headers):
        found = dict(headers)
        await self.producer.send_and_wait(
            found[REPLY_TOPIC_HEADER],
            value.encode() if isinstance(value, str) else value,
            partition=int(found[PARTITION_HEADER]),
            headers=[(CORRELATION_ID_HEADER, found[CORRELATION_ID_HEADER])],
        )


async def replies_right_after_start(template, reply_topic, values_by_partition):
    """Start a fresh replying template and, the moment start() returns, ask for one reply
    per ``{partition: value}``; returns ``{value: reply value, or None if it never came}``."""

    async def one(replying, partition, value):
        headers = {PARTITION_HEADER: str(partition).encode()}
        try:
            reply = await replying.send_and_receive(
                "unused-requests", value, headers=headers, timeout=REPLY_WAIT
            )
        except ReplyTimeoutError:
            return value, None
        return value, reply.value

    async with ReplyingKafkaTemplate(template, reply_topic) as replying:
        pending = [one(replying, p, v) for p, v in values_by_partition.items()]
        return dict(await asyncio.gather(*pending))


async def test_a_reply_written_the_moment_start_returns_is_received(kafka_bootstrap):
    replies = await create_topic(kafka_bootstrap)
    async with InstantReplies(kafka_bootstrap) as template:
        await template.warm_up(replies, [0])
        for round_ in range(ROUNDS):
            # Each round's start() finds the end of the topic one record further on.
            value = b"r%d" % round_
            got = await replies_right_after_start(template, replies, {0: value})
            assert got == {value: value}, f"round {round_}"


async def test_replies_on_every_partition_arrive_right_after_start(kafka_bootstrap):
    replies = await create_topic(kafka_bootstrap, partitions=3)
    async with InstantReplies(kafka_bootstrap) as template:
        await template.warm_up(replies, [0, 1, 2])
        for round_ in range(ROUNDS):
            sent = {p: b"r%d-p%d" % (round_, p) for p in range(3)}
            got = await replies_right_after_start(template, replies, sent)
            assert got == {v: v for v in sent.values()}, f"round {round_}"


async def test_a_missing_reply_topic_is_created_by_the_broker_and_replies_arrive(kafka_bootstrap):
    # The consumer's metadata request has the broker create it (auto.create.topics.enable).
    async with InstantReplies(kafka_bootstrap) as template:
        for round_ in range(3):
            value = b"r%d" % round_
            got = await replies_right_after_start(template, unique("new-replies"), {0: value})
            assert got == {value: value}, f"round {round_}"


async def test_a_send_to_listener_answers_a_request_sent_right_after_start(kafka_bootstrap):
    requests, replies = await create_topic(kafka_bootstrap), await create_topic(kafka_bootstrap)
    settings = settings_for(kafka_bootstrap)
    answered = []
    async with KafkaTemplate(settings) as template:
        registry = ListenerRegistry(settings, environ={}, template=template)

        @registry.listener(requests, group_id=unique("echo"))
        @send_to()
        async def echo(text: str) -> str:
            return text

        async with registry:
            for round_ in range(ROUNDS):
                async with ReplyingKafkaTemplate(template, replies) as replying:
                    reply = await replying.send_and_receive(
                        requests, f"r{round_}", timeout=REPLY_WAIT
                    )
                answered.append(reply.value)
    assert answered == [b"r%d" % n for n in range(ROUNDS)]
