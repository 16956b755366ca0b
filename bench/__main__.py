"""``python -m bench``: kafkaboot against raw aiokafka and FastStream, doing the same work,
and against the ceilings of this machine and broker (librdkafka through confluent-kafka,
Kafka's own Java perf tools).

Starts a local Apache Kafka broker unless ``--bootstrap`` / ``$KAFKA_BOOTSTRAP_SERVERS``
names one, runs every scenario (or ``--only a,b``) in this one process run so that ratios
compare like with like, prints the table and writes ``bench/results/latest.{json,md}``.
``--quick`` runs every scenario at a tiny size (``quick.{json,md}``): it checks that the
suite works, not the speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench import harness
from bench.harness import Row
from bench.scenarios import (
    ceilings,
    consume,
    dispatch,
    fanin,
    keyed,
    latency,
    produce,
    serialization,
    stored,
)
from bench.services import machine_steal, steal_percent

SCENARIOS = harness.GROUPS
FULL = {
    "consume": 500_000,
    "produce": 200_000,
    "dispatch": 100_000,
    "fanin": 160_000,
    "footprint": 1_000_000,  # Records the central consumer drains for its peak RSS.
    "serialization": 200_000,
    "keyed": 100_000,
    "stored": 200_000,
}
QUICK = {
    "consume": 2_000,
    "produce": 2_000,
    "dispatch": 2_000,
    "fanin": 1_600,
    "footprint": 2_000,
    "serialization": 2_000,
    "keyed": 2_000,
    "stored": 2_000,
}


@contextlib.contextmanager
def kafka(bootstrap: str | None) -> Iterator[tuple[str, str]]:
    if bootstrap:
        yield bootstrap, "external cluster"
        return
    from kafkaboot.testing import KafkaCluster

    with tempfile.TemporaryDirectory() as data, KafkaCluster(data) as cluster:
        yield cluster.bootstrap_servers, cluster.version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated scenarios: {', '.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run each")
    parser.add_argument(
        "--runs",
        type=int,
        help="repetitions (default 3, and at least 5 for consume, produce, latency and "
        "the start-to-ready time; quick: 1)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the record counts (e.g. 0.2, 3)"
    )
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument(
        "--results",
        type=Path,
        help=f"folder for the results files (default {harness.RESULTS}): a trial run "
        "elsewhere leaves the recorded results alone",
    )
    args = parser.parse_args(argv)
    chosen = SCENARIOS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; pick from {SCENARIOS}")
    sizes = {k: max(1, int(v * args.scale)) for k, v in (QUICK if args.quick else FULL).items()}
    runs = args.runs or (1 if args.quick else 3)
    # The rows with a ratio target pair kafkaboot with its baseline run by run; their spread
    # is wide on a 2-core machine, so a full run pairs them at least five times.
    paired = runs if args.quick else max(runs, 5)
    rows: list[Row] = []
    started, steal_before = time.monotonic(), machine_steal()
    loop = asyncio.new_event_loop()
    with kafka(args.bootstrap) as (bootstrap, kafka_version):
        for name in chosen:
            print(f"[bench] {name} ...", flush=True)
            before = len(rows)
            if name == "consume":
                rows += consume.run(bootstrap, sizes["consume"], paired, loop)
            elif name == "produce":
                rows += produce.run(bootstrap, sizes["produce"], paired, loop)
            elif name == "ceilings":
                rows += ceilings.run(bootstrap, sizes["consume"], sizes["produce"], runs, loop)
            elif name == "dispatch":
                rows += dispatch.run(sizes["dispatch"], runs, loop)
            elif name == "latency":
                rates, seconds = ([100], 1.0) if args.quick else ([500, 1000], 10.0)
                rows += latency.run(bootstrap, rates, seconds, paired, loop)
            elif name == "fanin":
                rows += fanin.run(
                    bootstrap,
                    sizes["fanin"],
                    1 if args.quick else runs,
                    loop,
                    footprint_records=sizes["footprint"],
                    ready_runs=paired,
                )
            elif name == "keyed":
                rows += keyed.run(bootstrap, sizes["keyed"], runs, loop)
            elif name == "serialization":
                rows += serialization.run(sizes["serialization"], runs)
            elif name == "stored":
                rows += stored.run(bootstrap, sizes["stored"], paired, loop)
            for row in rows[before:]:
                row.group = name
    loop.close()
    env = harness.environment(kafka_version)
    # On a virtual machine, CPU time the hypervisor gives to other guests slows every row.
    env["cpu_steal_percent"] = steal_percent(steal_before, machine_steal())
    kind = "quick run" if args.quick else "full run"
    if args.only:
        kind = f"{kind} of {', '.join(chosen)}; the other rows from the runs before"
    title = f"kafkaboot benchmarks ({kind}, {time.monotonic() - started:.0f} s)"
    path = harness.write(rows, env, title, args.quick, args.results)
    print("\n" + path.with_suffix(".md").read_text())
    print(f"[bench] results: {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
