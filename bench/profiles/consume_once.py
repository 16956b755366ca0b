"""Drain ``RECORDS`` records of a filled topic once with one consume variant, for a profiler.

The per-record cache figures in docs/performance.md come from running this under valgrind
twice per variant and subtracting, which cancels start-up::

    python -m bench.profiles.consume_once fill BOOTSTRAP            # prints a topic
    valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file=raw.20k \\
        python -m bench.profiles.consume_once raw BOOTSTRAP TOPIC 20000
    ... the same with 60000, and with ``single`` for the listener; then
    callgrind_annotate --show=Ir,I1mr,D1mr raw.60k   (minus raw.20k, per 40,000 records)
"""

import asyncio
import sys

from bench.scenarios import consume

VARIANTS = {"raw": consume.raw, "single": consume.single, "batch": consume.batch}


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "fill":
        print(asyncio.run(consume.fill(argv[1], 500_000)))
        return
    if len(argv) != 4 or argv[0] not in VARIANTS:
        raise SystemExit(
            "usage: python -m bench.profiles.consume_once fill BOOTSTRAP\n"
            f"       python -m bench.profiles.consume_once {{{','.join(VARIANTS)}}} "
            "BOOTSTRAP TOPIC RECORDS"
        )
    variant, bootstrap, topic, records = argv[0], argv[1], argv[2], int(argv[3])
    rate = asyncio.run(VARIANTS[variant](bootstrap, topic, records))
    print(f"{variant}: {rate:,.0f} records/s")


if __name__ == "__main__":
    main(sys.argv[1:])
