"""Declared topics are created at startup, extended, never shrunk; bad declarations fail."""

import pytest

from kafkaboot import load_settings
from kafkaboot.admin import KafkaAdmin, NewTopic, TopicReport
from kafkaboot.errors import ConfigurationError, KafkaBootError
from kafkaboot.testing import free_ports

from .kafka_helpers import unique

pytestmark = pytest.mark.asyncio


def settings_for(bootstrap, **kafka):
    kafka["bootstrap-servers"] = bootstrap
    return load_settings(environ={}, overrides={"kafka": kafka})


async def partitions_of(admin, name):
    client = admin.client()
    await client.start()
    try:
        [topic] = await client.describe_topics([name])
        return len(topic["partitions"])
    finally:
        await client.close()


async def test_topics_from_yaml_and_code_are_created_then_left_alone(kafka_bootstrap):
    from_yaml, from_code = unique("yaml"), unique("code")
    settings = settings_for(
        kafka_bootstrap,
        topics=[{"name": from_yaml, "partitions": 3, "configs": {"cleanup.policy": "compact"}}],
    )
    admin = KafkaAdmin(settings, topics=[NewTopic(from_code, partitions=2)])
    report = await admin.start()
    assert sorted(report.created) == sorted([from_yaml, from_code])
    assert await partitions_of(admin, from_yaml) == 3
    assert await partitions_of(admin, from_code) == 2

    again = await KafkaAdmin(settings, topics=[NewTopic(from_code, partitions=2)]).start()
    assert again.created == ()
    assert sorted(again.unchanged) == sorted([from_yaml, from_code])


async def test_fewer_partitions_than_declared_are_extended_never_shrunk(kafka_bootstrap):
    name = unique("grow")
    await KafkaAdmin(settings_for(kafka_bootstrap), [NewTopic(name, partitions=2)]).start()
    grown = await KafkaAdmin(settings_for(kafka_bootstrap), [NewTopic(name, partitions=5)]).start()
    assert grown.extended == (name,)
    admin = KafkaAdmin(settings_for(kafka_bootstrap), [NewTopic(name, partitions=1)])
    assert (await admin.start()).unchanged == (name,)
    assert await partitions_of(admin, name) == 5


async def test_broker_defaults_apply_when_partitions_are_not_given(kafka_bootstrap):
    name = unique("defaults")
    admin = KafkaAdmin(settings_for(kafka_bootstrap), [NewTopic(name)])
    assert (await admin.start()).created == (name,)
    assert await partitions_of(admin, name) == 1  # The test broker's num.partitions.


async def test_replication_factor_above_broker_count_is_a_clear_error(kafka_bootstrap):
    settings = settings_for(
        kafka_bootstrap, topics=[{"name": unique("rf"), "replication-factor": 3}]
    )
    with pytest.raises(ConfigurationError, match=r"replication factor 3 but the cluster has 1"):
        await KafkaAdmin(settings).start()


async def test_auto_create_off_does_nothing(kafka_bootstrap):
    name = unique("off")
    settings = settings_for(kafka_bootstrap, admin={"auto-create": False}, topics=[{"name": name}])
    admin = KafkaAdmin(settings)
    assert await admin.start() == TopicReport()
    client = admin.client()
    await client.start()
    try:
        assert name not in await client.list_topics()
    finally:
        await client.close()


async def test_unreachable_broker_fails_only_with_fail_fast():
    [port] = free_ports(1)
    topics = [{"name": "t"}]
    lenient = settings_for(f"127.0.0.1:{port}", admin={"operation-timeout": "3s"}, topics=topics)
    assert (await KafkaAdmin(lenient).start()).created == ()
    strict = settings_for(
        f"127.0.0.1:{port}", admin={"operation-timeout": "3s", "fail-fast": True}, topics=topics
    )
    with pytest.raises(KafkaBootError, match="fail-fast is true"):
        await KafkaAdmin(strict).start()
