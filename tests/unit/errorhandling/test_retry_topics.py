"""Retry-topic configuration, validation and headers, without a broker."""

import struct
from datetime import timedelta

import pytest
from aiokafka import ConsumerRecord

from kafkaboot import FixedBackOff, ListenerRegistry, load_settings, retryable_topic
from kafkaboot.errorhandling import RetryTopicConfig
from kafkaboot.errorhandling.retry_topics import due_time, retry_config_from
from kafkaboot.errors import DeserializationError, ListenerDefinitionError


@retryable_topic()
async def handler(value: str) -> None: ...


def test_retryable_topic_needs_a_template():
    registry = ListenerRegistry(load_settings(environ={}), environ={})
    with pytest.raises(ListenerDefinitionError, match="needs the registry's KafkaTemplate"):
        registry.listener("t", group_id="g")(handler)


def test_retryable_topic_refuses_batch_listeners_and_topic_patterns():
    registry = ListenerRegistry(load_settings(environ={}), environ={}, template=object())
    with pytest.raises(ListenerDefinitionError, match="batch listeners"):
        registry.listener("t", group_id="g", batch=True)(handler)
    with pytest.raises(ListenerDefinitionError, match="named topics"):
        registry.listener(topic_pattern="t-.*", group_id="g")(handler)


def test_topic_names_and_what_is_retried():
    config = RetryTopicConfig(attempts=3, include=(ConnectionError, ValueError))
    assert config.derived_topics("orders") == ["orders-retry-0", "orders-retry-1", "orders-dlt"]
    assert config.retryable(ConnectionError())
    assert not config.retryable(KeyError())  # Not included.
    assert not config.retryable(DeserializationError("bad", None))  # Excluded by default.
    assert RetryTopicConfig(attempts=1, dlt=False).derived_topics("orders") == []


def test_yaml_retry_topic_settings_follow_spring_boot():
    def config(**topic):
        tree = {"retry": {"topic": {"enabled": True, **topic}}}
        return retry_config_from(
            load_settings(environ={}, overrides={"kafka": tree}).kafka.retry.topic
        )

    assert retry_config_from(load_settings(environ={}).kafka.retry.topic) is None
    fixed = config(attempts=4, delay="2s")
    assert (fixed.attempts, fixed.backoff.delay(3)) == (4, timedelta(seconds=2))
    grows = config(delay="1s", multiplier=3, **{"max-delay": "5s"})
    assert [grows.backoff.delay(n).total_seconds() for n in (1, 2, 3)] == [1, 3, 5]


def test_due_time_reads_springs_backoff_timestamp_header():
    due_ms = 1_800_000_000_000
    header = ("retry_topic-backoff-timestamp", struct.pack(">q", due_ms))
    record = ConsumerRecord("t-retry-0", 0, 0, 0, 0, None, b"v", None, 0, 1, (header,))
    assert due_time(record) == due_ms / 1000
    bare = ConsumerRecord("t", 0, 0, 0, 0, None, b"v", None, 0, 1, ())
    assert due_time(bare) is None


def test_attempts_not_the_backoffs_limit_decide_how_often_to_retry():
    config = RetryTopicConfig(attempts=12, backoff=FixedBackOff(1.0, max_attempts=3))
    assert config.backoff.delay(11) == timedelta(seconds=1)
