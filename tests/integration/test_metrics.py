"""Prometheus metrics against the real broker: counters after a known workload, lag per
partition (every assigned one, with traffic or not) in records and seconds, paused or not."""

import asyncio
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kafkaboot import ListenerEndpoint, TopicPartition
from kafkaboot.application import KafkaBootApplication

from .kafka_helpers import create_topic, produce, unique, wait_for

pytestmark = pytest.mark.asyncio


def samples(application):
    """Every sample of the scrape, as {(name, frozenset(labels)): value}."""
    text = application.metrics.exposition().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    """The one sample of ``name`` whose labels include ``labels`` (None: there is none)."""
    wanted = set(labels.items())
    matches = [v for (n, ls), v in found.items() if n == name and wanted <= set(ls)]
    assert len(matches) <= 1, f"{name} {labels}: {len(matches)} samples"
    return matches[0] if matches else None


def application_for(bootstrap, **kafka):
    kafka.setdefault("consumer", {}).update({"auto-offset-reset": "earliest"})
    kafka["bootstrap-servers"] = bootstrap
    return KafkaBootApplication(overrides={"kafka": kafka}, startup_deadline=30)


async def test_counters_timers_and_lag_after_a_known_workload(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=3, prefix="metrics")
    group = unique("g")
    application = application_for(
        kafka_bootstrap,
        listener={
            "error-handler": {
                "backoff": {"max-attempts": 2},
                "dead-letter": {"enabled": True},
            }
        },
    )
    handled = []

    async def on_value(value: bytes) -> None:
        if value.startswith(b"bad"):
            raise ValueError("a bad record")
        handled.append(value)

    application.registry.register(
        ListenerEndpoint(handler=on_value, topics=(topic,), group_id=group, id="metered")
    )
    # 1,000 good records on partitions 0 and 1, 3 bad ones on partition 0; 2 has none.
    values = [b"ok-%d" % n for n in range(1000)]
    await produce(kafka_bootstrap, topic, values, partitions=2)
    await produce(kafka_bootstrap, topic, [b"bad-%d" % n for n in range(3)])
    async with application:
        await wait_for(lambda: len(handled) == 1000, timeout=60, message="1,000 handled")

        def settled():
            found = samples(application)
            return value(found, "kafkaboot_listener_records_dead_lettered_total") == 3 and all(
                value(
                    found,
                    "kafkaboot_consumer_lag_records",
                    listener="metered",
                    partition=str(p),
                )
                == 0
                for p in range(3)
            )

        await wait_for(settled, timeout=30, message="3 dead letters and no lag")
        found = samples(application)
        mine = {"listener": "metered", "group": group, "topic": topic}
        assert value(found, "kafkaboot_listener_records_handled_total", **mine) == 1000
        assert value(found, "kafkaboot_listener_records_retried_total", **mine) == 3
        assert value(found, "kafkaboot_listener_records_recovered_total", **mine) == 3
        assert value(found, "kafkaboot_listener_records_dead_lettered_total", **mine) == 3
        assert value(found, "kafkaboot_listener_records_filtered_total", **mine) == 0
        success = {**mine, "result": "success", "exception": "none"}
        failure = {**mine, "result": "failure", "exception": "ValueError"}
        assert value(found, "kafkaboot_listener_seconds_count", **success) == 1000
        assert value(found, "kafkaboot_listener_seconds_count", **failure) == 6
        assert value(found, "kafkaboot_listener_seconds_bucket", **success, le="+Inf") == 1000
        assert value(found, "kafkaboot_listener_records_in_flight", listener="metered") == 0
        for partition in range(3):
            where = {"listener": "metered", "topic": topic, "partition": str(partition)}
            assert value(found, "kafkaboot_consumer_lag_records", **where) == 0
            assert value(found, "kafkaboot_consumer_lag_seconds", **where) == 0
        assert value(found, "kafkaboot_consumer_end_offset", partition="0", topic=topic) == 503
        assert value(found, "kafkaboot_consumer_end_offset", partition="2", topic=topic) == 0
        assert value(found, "kafkaboot_listener_state", listener="metered", state="running") == 1
        dlt = {"topic": f"{topic}-dlt"}
        assert value(found, "kafkaboot_template_records_sent_total", **dlt) == 3
        assert value(found, "kafkaboot_template_sent_bytes_total", **dlt) == sum(
            len(b"bad-%d" % n) for n in range(3)
        )
        assert value(found, "kafkaboot_template_seconds_count", **dlt, result="success") == 3


async def test_lag_of_a_paused_listener_counts_the_records_it_does_not_fetch(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2, prefix="lag")
    application = application_for(kafka_bootstrap)
    handled = []

    async def on_value(value: bytes) -> None:
        handled.append(value)

    container = application.registry.register(
        ListenerEndpoint(handler=on_value, topics=(topic,), group_id=unique("g"), id="paused")
    )
    await produce(kafka_bootstrap, topic, [b"x"] * 10)
    async with application:
        where = {"listener": "paused", "topic": topic, "partition": "0"}
        await wait_for(
            lambda: (
                value(samples(application), "kafkaboot_consumer_lag_records", **where) == 0
                and len(handled) == 10
            ),
            timeout=30,
            message="caught up",
        )
        container.pause()
        await wait_for(
            lambda: TopicPartition(topic, 0) in container.workers[0].consumer.paused(),
            message="the partition paused",
        )
        sent_at = time.time()
        await produce(kafka_bootstrap, topic, [b"y"] * 500)
        # The paused partition is not fetched: its end offset comes from the broker, asked
        # in the background by a scrape.
        await wait_for(
            lambda: value(samples(application), "kafkaboot_consumer_lag_records", **where) == 500,
            timeout=30,
            message="lag 500",
        )
        other = {**where, "partition": "1"}
        found = samples(application)
        assert value(found, "kafkaboot_consumer_lag_records", **other) == 0
        assert len(handled) == 10
        await asyncio.sleep(1.2)
        found = samples(application)
        age = value(found, "kafkaboot_consumer_lag_seconds", **where)
        assert 1.0 <= age <= time.time() - sent_at + 0.5
        assert value(found, "kafkaboot_listener_state", listener="paused", state="paused") == 1
        container.resume()
        await wait_for(lambda: len(handled) == 510, timeout=30, message="all handled")
        await wait_for(
            lambda: value(samples(application), "kafkaboot_consumer_lag_records", **where) == 0,
            timeout=30,
            message="caught up again",
        )
        assert value(samples(application), "kafkaboot_consumer_lag_seconds", **where) == 0
