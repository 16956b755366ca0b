"""What every benchmark shares: its command line, a broker, and the results table."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

Main = Callable[[str, int, int], Coroutine[Any, Any, None]]


def run(main: Main, description: str, default_records: int = 200_000) -> None:
    """Parse ``--records/--repeat/--bootstrap`` and run ``main``; without a bootstrap
    (or ``$KAFKA_BOOTSTRAP_SERVERS``) a local broker is started for the run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--records", type=int, default=default_records)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    args = parser.parse_args()
    if args.bootstrap:
        asyncio.run(main(args.bootstrap, args.records, args.repeat))
        return
    from kafkaboot.testing import KafkaCluster

    with tempfile.TemporaryDirectory() as data, KafkaCluster(data) as cluster:
        asyncio.run(main(cluster.bootstrap_servers, args.records, args.repeat))


def print_table(title: str, rows: Sequence[tuple[str, list[float]]], ratio_label: str) -> None:
    """Median records/s with the spread per row, and the ratio of the last row to the first."""
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}, CPUs: {os.cpu_count()}")
    print(f"| {'scenario':<{width}} | {'records/s':>10} | {'spread':>17} |")
    print(f"|{'-' * (width + 2)}|{'-' * 12}|{'-' * 19}|")
    for name, rates in rows:
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        print(f"| {name:<{width}} | {statistics.median(rates):>10,.0f} | {spread:>17} |")
    ratio = statistics.median(rows[-1][1]) / statistics.median(rows[0][1])
    print(f"\nratio {ratio_label}: {ratio:.2f}")
