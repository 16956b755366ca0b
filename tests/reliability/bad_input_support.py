"""Shared pieces of the bad-input tests: hypothesis sizes and the poison records.

Example counts are CI-sized by default; ``KAFKABOOT_RELIABILITY=full`` (``make
reliability``) runs ten times as many.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from hypothesis import HealthCheck, settings

FULL = os.environ.get("KAFKABOOT_RELIABILITY") == "full"


def fuzz_settings(examples: int = 200) -> settings:
    """Hypothesis settings for one property: ``examples`` in CI, ten times that in full."""
    return settings(
        max_examples=examples * 10 if FULL else examples,
        deadline=None,  # A shared 2-core machine: wall-clock deadlines would be flaky.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=not FULL,  # CI runs the same examples every time; full runs explore.
    )


def nested_arrays(depth: int) -> bytes:
    """``[[[...]]]``: valid JSON that a recursive parser cannot read."""
    return b"[" * depth + b"]" * depth


def poison_records(seed: int, valid_example: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Records no ``Message`` handler can take, each named for what is wrong with it.

    Drawn once from a seeded ``random.Random``, so every run sends the same bytes.
    """
    rng = random.Random(seed)  # Reproducible test data, not secrets.
    whole = json.dumps(valid_example).encode()
    return [
        ("random-bytes", rng.randbytes(64)),
        ("random-bytes-long", rng.randbytes(4096)),
        ("invalid-utf8", b'{"customer_id": "\xff\xfe", "sequence": 1}'),
        ("truncated-json", whole[: rng.randrange(1, len(whole) - 1)]),
        ("empty", b""),
        ("json-null", b"null"),
        ("json-list", b"[1, 2, 3]"),
        ("wrong-types", json.dumps({"customer_id": 17, "sequence": "seven"}).encode()),
        ("negative-sequence", json.dumps({"customer_id": "c", "sequence": -1}).encode()),
        ("deep-nesting", nested_arrays(100_000)),
        # Near the broker's default max.message.bytes (1 MB), valid JSON of the wrong shape.
        ("huge-900kb", json.dumps({"customer_id": "c", "sequence": "x" * 900_000}).encode()),
    ]
