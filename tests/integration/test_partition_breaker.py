"""How the template's per-partition breaker shapes sends against a real broker: while it is
open, a batch refuses only that partition's records, records without a key go to other
partitions, and one trial send, once confirmed, closes it. (What opens and closes it for a
real outage: tests/reliability/test_partial_outage.py; its state machine:
tests/unit/test_partition_health.py.)"""

import asyncio
import time

import pytest
from aiokafka.structs import TopicPartition

from kafkaboot import load_settings
from kafkaboot.errors import PartitionUnavailableError, SendBatchError
from kafkaboot.template import KafkaTemplate, ProducerRecord

from .kafka_helpers import create_topic

pytestmark = pytest.mark.asyncio


def _template(bootstrap, unavailable="1s", delivery="20s"):
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap-servers": bootstrap,
                "producer": {"acks": "all", "delivery-timeout": delivery},
                "template": {"unavailable-timeout": unavailable},
            }
        },
    )
    return KafkaTemplate(settings)


async def test_an_open_breaker_refuses_only_its_partition_and_one_trial_closes_it(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    async with _template(kafka_bootstrap, unavailable="3s") as template:
        await template.send_and_wait(topic, "warm-up", partition=1)
        # As if a send to partition 0 had stayed unconfirmed (the test above shows how).
        template._health.opened(TopicPartition(topic, 0), "unconfirmed", 1, time.monotonic())

        with pytest.raises(SendBatchError) as batch:
            await template.send_batch(
                [ProducerRecord(topic, "a", partition=0), ProducerRecord(topic, "b", partition=1)]
            )
        [(record, error)] = batch.value.failed
        assert record.partition == 0
        assert isinstance(error, PartitionUnavailableError)
        assert [r.partition for r in batch.value.delivered] == [1]

        keyless = [await template.send_and_wait(topic, f"v{n}") for n in range(10)]
        assert {r.partition for r in keyless} == {1}  # Records without a key go elsewhere.

        deadline = time.monotonic() + 10
        while True:  # Nothing of partition 0 in aiokafka: after 3 s one send goes through.
            try:
                result = await template.send_and_wait(topic, "trial", partition=0)
                break
            except PartitionUnavailableError:
                assert time.monotonic() < deadline, "no trial send within 10 s"
                await asyncio.sleep(0.1)
        assert result.partition == 0
        await template.send_and_wait(topic, "closed", partition=0)  # Closed again.
