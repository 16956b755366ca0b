"""The latency scenario's load generator, run in a process of its own
(``python -m bench.loadgen``) so that its CPU and its event loop's stalls are not the
measured path's: open loop, ``POST /messages`` at a fixed rate over keep-alive connections.

Each body carries its own stamps in ``payload`` (``n``, ``sent_ns``), so the consumer's
copy of the record says when the client sent it. Every time is ``time.time_ns()``
(CLOCK_REALTIME), the clock the services and the broker stamp with too. Written to
``--out`` as JSON: one ``[n, scheduled_ns, sent_ns, done_ns, status]`` per request.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence

from bench.services import Connection


async def drive(
    port: int, rate: int, count: int, connections: int, warmup: bool = False
) -> list[list[int]]:
    """``count`` requests, the n-th due at ``start + n / rate`` whether or not earlier ones
    were answered (a late client would hide the server's stalls)."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(Connection(port))
    results: list[list[int]] = []

    async def one(n: int, scheduled: int) -> None:
        connection = await pool.get()
        try:
            sent = time.time_ns()
            payload = {"n": n, "sent_ns": sent, "warmup": warmup}
            body = {"customer_id": f"c{n % 50}", "sequence": n // 50, "payload": payload}
            status, _ = await connection.send("POST", "/messages", json.dumps(body).encode())
            results.append([n, scheduled, sent, time.time_ns(), status])
        finally:
            pool.put_nowait(connection)

    started = time.time_ns()
    tasks = []
    for n in range(count):
        scheduled = started + n * 1_000_000_000 // rate
        delay = (scheduled - time.time_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, scheduled)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().close()
    return results


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: the client then takes less of the CPU the services need."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=int, required=True, help="requests per second")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", action="store_true", help="mark the records as warm-up")
    parser.add_argument("--out", required=True, help="where the JSON results go")
    args = parser.parse_args(argv)
    gc.freeze()  # The client's own collections should not delay its sends.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        results = runner.run(drive(args.port, args.rate, args.count, args.connections, args.warmup))
    with open(args.out, "w") as out:
        json.dump(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
