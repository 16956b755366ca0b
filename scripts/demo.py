"""The many-sites demo: N producer services publish M messages over HTTP into one central
consumer service, which keeps each in its database (SQLite, in this run's directory); then a
summary says whether anything was lost and whether each message is stored exactly once.

Starts a local Apache Kafka broker unless $KAFKA_BOOTSTRAP_SERVERS names a cluster; every
service runs as its own process with `kafkaboot run`, all started at once. While the load
runs, one line a second shows the rate, the progress and the central consumer's lag (its
group's committed offsets against the log end). Every message a site acknowledged (HTTP
202) is checked by id (customer, sequence) against what the central consumer stored.
Exits non-zero if a message was lost, a request failed or a service failed to start.

Usage: python scripts/demo.py [--producers N] [--messages M] [--batch B] [--connections C]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from demo_kit.cpu import CpuMeter
from demo_kit.live import ConsumerLag, LiveLine
from demo_kit.load import Tally, drive
from demo_kit.services import local_broker, start, stop_all, wait_ready

from kafkaboot.errors import BrokerError
from kafkaboot.testing import free_ports

GROUP = "central-consumer"


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


@contextlib.asynccontextmanager
async def kafka() -> AsyncIterator[tuple[str, asyncio.Future[Any], Callable[[], list[int]]]]:
    """The bootstrap servers, what to await before the broker can be relied on, and the
    process ids of the local broker (none for $KAFKA_BOOTSTRAP_SERVERS)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ready.set_result(None)
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"], ready, list
        return
    say("starting a local Apache Kafka broker and the services at the same time ...")
    async with local_broker() as (cluster, starting):
        yield cluster.bootstrap_servers, starting, lambda: [n.pid for n in cluster.nodes if n.pid]


async def received_all(port: int, tally: Tally, timeout: float) -> dict[str, Any]:
    """The central consumer's /stats once it has as many distinct messages as were
    acknowledged (or the timeout passed), with /stats/sequences as ``sequences``."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        while True:
            stats: dict[str, Any] = (await http.get("/stats")).json()
            if stats["unique"] >= tally.sent or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        stats["sequences"] = (await http.get("/stats/sequences")).json()["customers"]
    return stats


def lost_by_id(tally: Tally, sequences: dict[str, dict[str, Any]]) -> int:
    """Acknowledged messages the central consumer never stored, one by one."""
    lost = 0
    for customer, acknowledged in tally.acknowledged.items():
        seen = sequences.get(customer, {"contiguous": 0, "above": []})
        above = set(seen["above"])
        lost += sum(1 for n in acknowledged if n >= seen["contiguous"] and n not in above)
    return lost


def stored_once(tally: Tally, sequences: dict[str, dict[str, Any]]) -> int:
    """Acknowledged messages the central consumer's database holds exactly once."""
    once = 0
    for customer, acknowledged in tally.acknowledged.items():
        seen = sequences.get(customer, {"contiguous": 0, "above": [], "repeated": []})
        above, repeated = set(seen["above"]), set(seen.get("repeated", ()))
        once += sum(
            1 for n in acknowledged if (n < seen["contiguous"] or n in above) and n not in repeated
        )
    return once


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    at = [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99)]
    return f"{at[0]:.1f} / {at[1]:.1f}"


async def run(args: argparse.Namespace) -> int:
    began = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="kafkaboot-demo-"))
    run_id = uuid.uuid4().hex[:6]
    topic, group = f"events-{run_id}", f"{GROUP}-{run_id}"
    tally = Tally(args.messages)
    timings: dict[str, float] = {}
    async with kafka() as (bootstrap, broker_started, broker_pids):
        env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EVENTS_TOPIC": topic}
        consumer_port, *ports = free_ports(args.producers + 1)
        say(
            f"starting the central consumer (topic {topic}, 15 partitions) and "
            f"{args.producers} producer services (logs in {logs}) ..."
        )
        consumer = start(
            "sample_consumer_service",
            consumer_port,
            # Its events in a database of this run's own (SQLite, next to the logs).
            env
            | {
                "KAFKA_LISTENERS_CENTRAL_EVENTS_GROUP_ID": group,
                "DATABASE_URL": f"sqlite+aiosqlite:///{logs / 'central.db'}",
            },
            logs / "consumer.log",
        )
        processes = [consumer]
        for i, port in enumerate(ports):
            site_env = env | {"INSTANCE_ID": f"site-{i:02d}"}
            processes.append(
                start("sample_producer_service", port, site_env, logs / f"producer-{i:02d}.log")
            )
        cpu = CpuMeter(
            {
                "producers": lambda: [p.pid for p in processes[1:]],
                "consumer": lambda: [consumer.pid],
                "broker": broker_pids,
                "driver": lambda: [os.getpid()],
            }
        )
        cpu.read("start")
        lag = ConsumerLag(bootstrap, topic, group)
        reporter: asyncio.Task[None] | None = None
        try:
            await broker_started
            timings["broker ready"] = time.monotonic() - began
            ready = await asyncio.gather(
                *(
                    wait_ready(p, proc)
                    for p, proc in zip([consumer_port, *ports], processes, strict=True)
                )
            )
            timings["services ready"] = max(ready) - began
            cpu.read("ready")
            say(
                f"Kafka at {bootstrap} ready after {timings['broker ready']:.1f}s, "
                f"all {len(processes)} services after {timings['services ready']:.1f}s"
            )
            await lag.start()
            mode = f"{args.batch} per POST /messages/batch" if args.batch > 1 else "POST /messages"
            say(
                f"driving {args.messages:,} messages, {mode}, {args.connections} connections "
                f"per site ..."
            )
            live = LiveLine(tally, lag, consumer_port)
            reporter = asyncio.create_task(live.run())
            await drive(tally, ports, args.connections, args.batch)
            timings["driving"] = tally.seconds
            cpu.read("driven")
            stats = await received_all(consumer_port, tally, args.drain_timeout)
            timings["drained"] = time.monotonic() - tally.started
            cpu.read("drained")
        except (RuntimeError, BrokerError) as exc:
            say(f"FAILED: {exc} (logs in {logs})")
            return 2
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
                with contextlib.suppress(Exception):
                    await live.show(5.0)  # Where it ended: all received, lag 0 once committed.
                await live.close()
            with contextlib.suppress(Exception):
                await lag.stop()
            say("stopping the services ...")
            await asyncio.to_thread(stop_all, processes)
    timings["total"] = time.monotonic() - began
    return summary(args, tally, stats, timings, cpu, logs)


def summary(
    args: argparse.Namespace,
    tally: Tally,
    stats: dict[str, Any],
    timings: dict[str, float],
    cpu: CpuMeter,
    logs: Path,
) -> int:
    lost = lost_by_id(tally, stats["sequences"])
    once = stored_once(tally, stats["sequences"])
    latency = stats.get("latency_ms", {})
    counts = stats["per_instance"] or {"-": 0}
    rows = [
        ("producer instances", args.producers),
        ("messages per request", args.batch),
        ("messages sent (HTTP 202)", f"{tally.sent:,}"),
        ("HTTP errors (messages)", tally.failed),
        ("stored by the central consumer (rows)", f"{stats['stored']:,}"),
        ("unique", f"{stats['unique']:,}"),
        ("duplicates", stats["duplicates"]),
        ("lost", lost),
        ("stored once", f"{once:,} of {tally.sent:,}"),
        ("sequence gaps", stats["gaps"]),
        ("throughput (sent/s)", f"{tally.sent / timings['driving']:,.0f}"),
        ("through the consumer (received/s)", f"{stats['unique'] / timings['drained']:,.0f}"),
        ("HTTP round trip p50 / p99 (ms)", percentiles(tally.round_trips_ms)),
        ("end-to-end latency p50 / p99 (ms)", f"{latency.get('p50')} / {latency.get('p99')}"),
        ("per instance (min / max)", f"{min(counts.values()):,} / {max(counts.values()):,}"),
        ("broker ready / services ready (s)", _seconds(timings, "broker ready", "services ready")),
        ("driving / drained (s)", _seconds(timings, "driving", "drained")),
        ("wall time (s)", f"{timings['total']:.1f}"),
        *_cpu_rows(cpu, tally.sent),
    ]
    print()
    print("| metric | value |")
    print("| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
    for why, count in sorted(tally.errors.items()):
        say(f"{count} message(s) not acknowledged: {why}")
    ok = lost == 0 and tally.failed == 0 and stats["gaps"] == 0 and once == tally.sent
    say(
        "OK: nothing lost, each message stored once"
        if ok
        else f"FAILED: lost={lost} stored_once={once} of {tally.sent} "
        f"http_errors={tally.failed} (logs in {logs})"
    )
    return 0 if ok else 1


def _cpu_rows(cpu: CpuMeter, sent: int) -> list[tuple[str, str]]:
    """Where the CPU went: while starting, and per message while loading and draining;
    ``others`` is what the rest of the machine used meanwhile (a shared machine's noise)."""
    start, load = cpu.between("start", "ready"), cpu.between("ready", "drained")
    if not start or not load:
        return []
    roles = [role for role in cpu.roles if start[role] or load[role]]
    names = " / ".join([*roles, "others"])
    return [
        (f"CPU s to start: {names}", " / ".join(f"{start[r]:.1f}" for r in [*roles, "others"])),
        (
            f"CPU ms per message under load: {names}",
            " / ".join(f"{1000 * load[r] / max(sent, 1):.2f}" for r in [*roles, "others"]),
        ),
    ]


def _seconds(timings: dict[str, float], *names: str) -> str:
    return " / ".join(f"{timings[name]:.1f}" for name in names)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--producers", type=int, default=15, help="producer services (sites)")
    parser.add_argument("--messages", type=int, default=30_000, help="messages in all")
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="messages per request: 1 posts to /messages, more to /messages/batch (at most "
        "1000), which shows the central consumer's own ceiling",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="keep-alive connections per site"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=120, help="seconds to wait for the consumer"
    )
    args = parser.parse_args()
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000 (the services' MAX_BATCH_MESSAGES)")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
