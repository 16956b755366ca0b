"""Scenario 13: exactly-once into a database. A central consumer that keeps every event in
a database with its offsets (an offset store) is SIGKILLed in the middle of a batch three
times under continuous production, and a second instance joins and leaves (two
rebalances): the ``events`` table holds every message acknowledged to a producer exactly
once, for SQLite and for PostgreSQL.

Kafka commits only at revocations here (``ack-mode: time``, an hour): every kill leaves
the committed offsets far behind the database. The control, the same service without an
offset store, shows what that means without one: the records since the last Kafka commit
are stored again."""

import asyncio
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from kafkaboot.offset_store import SqlOffsetStore
from kafkaboot.testing import FaultGate

from ..integration.kafka_helpers import create_topic, unique
from .central import CentralConsumer, cleanup, service_config
from .conftest import Row
from .ledger import Handling, Ledger, read_journal
from .load import Load
from .services.stored_consumer import events

PARTITIONS = 6


def _database_url(request: pytest.FixtureRequest, database: str, tmp_path: Path) -> str:
    if database == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    return str(request.getfixturevalue("postgres_url"))


async def _create_events(url: str) -> None:
    async with SqlOffsetStore(url) as store, store.engine.begin() as connection:
        await connection.run_sync(events.metadata.create_all)


async def _stored(url: str) -> list[tuple[str, int, int, int, int, int]]:
    async with SqlOffsetStore(url) as store, store.engine.connect() as connection:
        query = text("SELECT customer_id, sequence, part, off, pid, batch FROM events ORDER BY id")
        return [tuple(row) for row in await connection.execute(query)]


def _transactions(path: Path) -> list[tuple[int, int]]:
    """The (pid, batch) of each transaction entered so far, in order (complete lines)."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]
    return [(int(pid), int(batch)) for pid, batch in (line.split() for line in lines)]


async def _in_transaction(
    path: Path, pid: int, after: int, nth: int = 1, timeout: float = 60
) -> tuple[int, tuple[int, int]]:
    """Until process ``pid`` has entered its ``nth`` transaction beyond the first ``after``
    entered by anyone: it now holds that batch's transaction open (and has committed the
    ones before it). How many were entered, and that batch."""
    deadline = time.monotonic() + timeout
    while True:
        entered = _transactions(path)
        mine = [t for t in entered[after:] if t[0] == pid]
        if len(mine) >= nth:
            return len(entered), mine[-1]
        assert time.monotonic() < deadline, f"process {pid} entered no transaction in {timeout} s"
        await asyncio.sleep(0.02)


async def _kill_at_gate(gate: FaultGate, instance: CentralConsumer) -> None:
    """Close ``gate``, SIGKILL ``instance`` once it holds a batch's transaction open there
    (its last batch, then), and open the gate again."""
    gate.close()
    try:
        await gate.wait_held(instance.pid)
        instance.kill()
    finally:
        gate.open()


async def _all_stored(ledger: Ledger, url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while missing := ledger.acknowledged - {(c, s) for c, s, *_ in await _stored(url)}:
        assert time.monotonic() < deadline, (
            f"{len(missing)} acknowledged messages not stored in {timeout} s,"
            f" e.g. {sorted(missing)[:5]}"
        )
        await asyncio.sleep(0.3)


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("database", "with_store"),
    [("sqlite", True), ("postgresql", True), ("sqlite", False)],
    ids=["sqlite", "postgresql", "control-without-store"],
)
async def test_sigkill_mid_batch_and_rebalances_store_every_message_exactly_once(
    kafka_bootstrap, tmp_path, size, report, request, database, with_store
):
    database_url = _database_url(request, database, tmp_path)
    kills = size.pick(3, 10)
    topic = await create_topic(kafka_bootstrap, partitions=PARTITIONS, prefix="stored-events")
    group, ledger = unique("stored"), Ledger()
    await _create_events(database_url)
    transactions, gate = tmp_path / "transactions", FaultGate(tmp_path / "gate")
    config = service_config(tmp_path / "application.yml", kafka_bootstrap)

    def instance(name: str) -> CentralConsumer:
        return CentralConsumer(
            kafka_bootstrap,
            topic,
            group,
            tmp_path / "journal",  # Unused: the database is the record here.
            tmp_path / f"{name}.log",
            target="tests.reliability.services.stored_consumer",
            config=config,
            env={
                "DATABASE_URL": database_url,
                "TRANSACTIONS": str(transactions),
                "GATE": str(gate.path),
                "HOLD_MS": "400",
                # Kafka commits only at revocations: far behind the database.
                "KAFKA_LISTENERS_STORED_EVENTS_ACK_MODE": "time",
                "KAFKA_LISTENERS_STORED_EVENTS_ACK_TIME": "1h",
                **({} if with_store else {"WITHOUT_STORE": "1"}),
            },
        )

    first, second = instance("first"), instance("second")
    load = Load(kafka_bootstrap, topic, ledger, keys=20, rate=size.pick(300, 1000))
    try:
        first.start()
        await first.ready()
        await load.start(partitions=PARTITIONS)
        entered, killed = 0, []
        for _ in range(kills):
            # Once it has entered three transactions (at least two are committed, and Kafka
            # has not been told), the next batch to reach the gate holds its transaction
            # open (its rows written, the offsets not yet), and is killed there.
            await _in_transaction(transactions, first.pid, entered, nth=3)
            await _kill_at_gate(gate, first)
            entered_now = _transactions(transactions)
            killed.append([t for t in entered_now if t[0] == first.pid][-1])
            entered = len(entered_now)
            first.start()
        entered, _ = await _in_transaction(transactions, first.pid, entered)
        # A second instance joins (a rebalance), stores batches of its own, and leaves.
        second.start()
        await second.ready()
        entered, _ = await _in_transaction(transactions, second.pid, entered)
        assert second.terminate() in (0, -signal.SIGTERM)
        await _in_transaction(transactions, first.pid, entered)
        await load.acknowledged_more(200, timeout=30)
        await load.stop()
        await _all_stored(ledger, database_url)
        assert first.terminate() in (0, -signal.SIGTERM)
    finally:
        cleanup([first, second])
        await load.template.stop()
    stored = await _stored(database_url)
    handlings = [Handling(c, s, p, o, pid, 0.0) for c, s, p, o, pid, _ in stored]
    verdict = ledger.verdict(handlings)
    what = f"offset store ({database})" if with_store else "control: no offset store"
    report.append(
        Row(
            f"13. {what}: SIGKILL mid-batch, rebalances",
            f"{kills} SIGKILLs mid-transaction, 2 rebalances",
            verdict,
            None,  # Rows carry no time: the database holds what was stored, not when.
        )
    )
    batches = {(pid, batch) for *_, pid, batch in stored}
    assert not set(killed) & batches, "a kill landed outside its batch's transaction"
    verdict.assert_nothing_lost()
    assert second.pid in {pid for *_, pid, _ in stored}, "the second instance stored nothing"
    if with_store:
        assert verdict.duplicates == 0, "a message stored twice"
    else:  # Without the store, the records since the last Kafka commit come again.
        assert verdict.duplicates > 0


SAMPLE_CONFIG = Path(__file__).parents[2] / "sample_consumer_service" / "application.yml"
SAMPLE_PARTITIONS = 15
"""As the sample's application.yml declares the events topic (it would grow a smaller one)."""


def _batches(journal: list[Handling], pid: int) -> list[list[Handling]]:
    """The batches process ``pid`` journaled inside their transactions, in order: a
    batch's lines are written together, with one time (one batch at a time per process:
    the listener's concurrency is 1, so no two batches share a time)."""
    batches: dict[float, list[Handling]] = {}
    for handling in journal:
        if handling.pid == pid:
            batches.setdefault(handling.at, []).append(handling)
    return list(batches.values())


async def _sample_in_batch(
    journal: Path, pid: int, nth: int, timeout: float = 60
) -> list[Handling]:
    """Until process ``pid`` has journaled its ``nth`` batch (the ones before it have
    committed); that batch."""
    deadline = time.monotonic() + timeout
    while len(batches := _batches(read_journal(journal), pid)) < nth:
        assert time.monotonic() < deadline, f"process {pid} stored no batch in {timeout} s"
        await asyncio.sleep(0.02)
    return batches[nth - 1]


async def _sample_rows(url: str) -> list[tuple[str, int, int, int]]:
    async with SqlOffsetStore(url) as store, store.engine.connect() as connection:
        query = text(
            'SELECT customer_id, sequence, "partition", "offset" FROM events'
            ' ORDER BY stored_at, "partition", "offset"'  # Batch by batch, as stored.
        )
        return [tuple(row) for row in await connection.execute(query)]


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_the_sample_central_consumer_stores_each_event_once_through_sigkills(
    kafka_bootstrap, tmp_path, size, report, request, database
):
    """The sample itself (``kafkaboot run sample_consumer_service``): SIGKILLed in the
    middle of a batch three times, then a second instance joins and leaves; its ``events``
    table holds each acknowledged message once. Each killed batch is journaled again by a
    later process: its transaction had rolled back, so the kill landed inside it."""
    database_url = _database_url(request, database, tmp_path)
    kills = size.pick(3, 10)
    topic = await create_topic(
        kafka_bootstrap, partitions=SAMPLE_PARTITIONS, prefix="central-stored"
    )
    group, ledger, journal = unique("central-stored"), Ledger(), tmp_path / "journal"
    gate = FaultGate(tmp_path / "gate")

    def instance(name: str) -> CentralConsumer:
        return CentralConsumer(
            kafka_bootstrap,
            topic,
            group,
            journal,
            tmp_path / f"{name}.log",
            target="sample_consumer_service",
            config=SAMPLE_CONFIG,
            env={
                "DATABASE_URL": database_url,
                "CENTRAL_BATCH_HOLD_MS": "400",
                "CENTRAL_BATCH_GATE": str(gate.path),
                # Kafka commits only at revocations: far behind the database.
                "KAFKA_LISTENERS_CENTRAL_EVENTS_ACK_MODE": "time",
                "KAFKA_LISTENERS_CENTRAL_EVENTS_ACK_TIME": "1h",
            },
        )

    first, second = instance("first"), instance("second")
    load = Load(kafka_bootstrap, topic, ledger, keys=20, rate=size.pick(300, 1000))
    killed: list[list[Handling]] = []
    try:
        first.start()
        await first.ready()
        await load.start(partitions=SAMPLE_PARTITIONS)
        for _ in range(kills):
            # At least two batches committed (and Kafka not told): the next one to reach
            # the gate holds its transaction open, and is killed there.
            await _sample_in_batch(journal, first.pid, nth=3)
            await _kill_at_gate(gate, first)
            killed.append(_batches(read_journal(journal), first.pid)[-1])
            first.start()
        await _sample_in_batch(journal, first.pid, nth=1)
        second.start()
        await second.ready()
        await _sample_in_batch(journal, second.pid, nth=1)
        assert second.terminate() in (0, -signal.SIGTERM)
        await load.acknowledged_more(200, timeout=30)
        await load.stop()
        deadline = time.monotonic() + 90
        while missing := ledger.acknowledged - {
            (c, s) for c, s, *_ in await _sample_rows(database_url)
        }:
            assert time.monotonic() < deadline, f"{len(missing)} acknowledged, never stored"
            await asyncio.sleep(0.3)
        assert first.terminate() in (0, -signal.SIGTERM)
    finally:
        cleanup([first, second])
        await load.template.stop()
    rows = await _sample_rows(database_url)
    verdict = ledger.verdict([Handling(c, s, p, o, 0, 0.0) for c, s, p, o in rows])
    report.append(
        Row(
            f"13. the sample central consumer ({database}): SIGKILL mid-batch, rebalances",
            f"{kills} SIGKILLs mid-transaction, 2 rebalances",
            verdict,
            None,
        )
    )
    verdict.assert_nothing_lost()
    # The table's key (topic, partition, offset) turns a record stored twice into a failed
    # batch, so the log check below is what catches it; a message a producer sent twice
    # would count here.
    assert verdict.duplicates == 0, "a message stored twice"
    handled = read_journal(journal)
    for batch in killed:
        later = {(h.partition, h.offset) for h in handled if h.pid != batch[0].pid}
        assert {(h.partition, h.offset) for h in batch} <= later, "a kill landed after a commit"
    logs = first.output() + second.output()
    assert " failed on " not in logs, "a batch failed (a record stored twice is refused)"
