"""Poison records in the central consumer's topic: the sample consumer, run as users run
it, dead-letters each one with its raw bytes and Spring's headers, stores every valid
message around them once, and keeps running."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from kafkaboot.errorhandling import DeadLetterRecord
from kafkaboot.testing import free_ports
from tests.integration.kafka_helpers import read_all, unique
from tests.integration.test_run import wait_ready
from tests.integration.test_samples import run_service, stop
from tests.reliability.bad_input_support import poison_records
from tests.reliability.conftest import Row
from tests.reliability.ledger import Ledger, read_journal

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.asyncio]

VALID = 40
CUSTOMER = "c-poison"


def _valid(sequence: int) -> bytes:
    return json.dumps({"customer_id": CUSTOMER, "sequence": sequence}).encode()


async def _stats(port: int) -> dict:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        return (await http.get("/stats")).json()


async def _wait_for_unique(port: int, unique_count: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while (stats := await _stats(port))["unique"] < unique_count:
        assert time.monotonic() < deadline, f"only {stats['unique']} of {unique_count}: {stats}"
        await asyncio.sleep(0.2)
    return stats


async def _send(bootstrap: str, topic: str, values: list[bytes | None]) -> None:
    """All to partition 0, in order, so every poison record has valid ones after it."""
    # The default max_request_size (1 MB) takes the 900 KB record; the broker's default
    # max.message.bytes (1 MB + 12) does too, and so does its dead letter with its headers.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(
                topic,
                value,
                key=CUSTOMER.encode(),  # aiokafka refuses a record with neither (a tombstone).
                partition=0,
                headers=[("instance-id", b"site-poison")],
            )
    finally:
        await producer.stop()


async def test_poison_records_are_dead_lettered_and_nothing_after_them_is_lost(
    kafka_bootstrap, tmp_path, report
):
    topic, journal = unique("events-poison"), tmp_path / "journal"
    poison = poison_records(seed=13, valid_example={"customer_id": CUSTOMER, "sequence": 0})
    # valid 0, poison 0, valid 1, valid 2, poison 1, ...: each poison record has valid ones
    # before and after it in the same partition. A tombstone (no value) is no event: the
    # sample's handler skips it, saying so, and stores the events around it.
    values: list[bytes | None] = []
    poison_offsets = []
    for sequence, (_, data) in enumerate(poison):
        values.append(_valid(sequence))
        poison_offsets.append(len(values))
        values.append(data)
    values += [None, *(_valid(n) for n in range(len(poison), VALID))]
    tombstone = len(values) - (VALID - len(poison)) - 1

    [port] = free_ports(1)
    service = run_service(
        "sample_consumer_service",
        port,
        kafka_bootstrap,
        EVENTS_TOPIC=topic,
        KAFKA_LISTENERS_CENTRAL_EVENTS_GROUP_ID=unique("central-poison"),
        EVENTS_JOURNAL=str(journal),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'central.db'}",
    )
    try:
        await wait_ready(port, service)
        await _send(kafka_bootstrap, topic, values)
        try:
            stats = await _wait_for_unique(port, VALID)
        except AssertionError:
            print(service.output()[-8000:])
            raise
        dead = await read_all(kafka_bootstrap, f"{topic}-dlt", len(poison), wait=30.0)

        # Still consuming after all of them: one more valid message is handled.
        await _send(kafka_bootstrap, topic, [_valid(VALID)])
        after = await _wait_for_unique(port, VALID + 1)
        assert service.poll() is None
    finally:
        stop([service])
    assert f"skipped a tombstone at {topic}-0@{tombstone}" in service.output()

    ledger = Ledger()
    ledger.sent = ledger.acknowledged = {(CUSTOMER, n) for n in range(VALID + 1)}
    verdict = ledger.verdict(read_journal(journal))
    report.append(
        Row(
            "10. Poison records in the central consumer's topic",
            f"{len(poison)} poison records between the valid ones, all dead-lettered;"
            " a tombstone skipped",
            verdict,
            None,
        )
    )
    verdict.assert_nothing_lost()
    assert (verdict.duplicates, verdict.out_of_order) == (0, 0)
    assert (stats["unique"], stats["duplicates"], stats["gaps"]) == (VALID, 0, 0)
    assert after["received"] == VALID + 1
    assert [r.value for r in dead] == [data for _, data in poison], "raw bytes, in order"
    assert len(dead) == len(poison)
    for record, offset, (name, _) in zip(dead, poison_offsets, poison, strict=True):
        letter = DeadLetterRecord(record)
        assert (letter.original_topic, letter.original_partition) == (topic, 0), name
        assert letter.original_offset == offset, name
        assert letter.exception_cause_fqcn == "kafkaboot.errors.DeserializationError", name
        assert f"{topic}-0@{offset}" in (letter.exception_message or ""), name
        assert dict(record.headers)["kafka_dlt-exception-stacktrace"], name
        assert letter.original_headers == [("instance-id", b"site-poison")], name
        assert record.key == CUSTOMER.encode(), name
