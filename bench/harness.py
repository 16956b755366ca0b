"""What every scenario shares: repetitions and medians, the environment, the results table
and the JSON / Markdown files under ``bench/results/``."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
GROUPS = ("consume", "produce", "dispatch", "keyed", "latency", "fanin", "serialization")
"""Scenario families, in the order the table shows them."""


@dataclasses.dataclass
class Measured:
    """Repeated measurements of one thing; the median is the number that counts."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.values), max(self.values)


@dataclasses.dataclass
class Row:
    """One line of the table: a kafkaboot variant against the baselines doing the same work.

    ``higher_is_better``: throughput (records/s); otherwise a time (µs, ms), and the ratios
    are inverted so that a ratio above 1 always means "kafkaboot is faster".
    """

    scenario: str
    unit: str
    kafkaboot: Measured | None
    """``None`` in a row that shows a baseline alone."""
    raw: Measured | None = None
    faststream: Measured | None = None
    higher_is_better: bool = True
    target: str = ""
    note: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    group: str = ""
    """The scenario family (``consume``, ``produce``, ...) for ``--only`` runs."""

    def _one(self, ours: float, theirs: float) -> float | None:
        if not ours or not theirs:
            return None
        return ours / theirs if self.higher_is_better else theirs / ours

    def paired_ratios(self, other: Measured | None) -> list[float] | None:
        """One ratio per run, kafkaboot's against the baseline's of the same run (they ran
        back to back, :func:`repeat`), so that drift in the machine cancels out; ``None``
        when the runs do not pair up (a single run, or different counts)."""
        if other is None or self.kafkaboot is None:
            return None
        ours, theirs = self.kafkaboot.values, other.values
        if len(ours) != len(theirs) or len(ours) < 2:
            return None
        ratios = [self._one(a, b) for a, b in zip(ours, theirs, strict=True)]
        return [r for r in ratios if r is not None] or None

    def _ratio(self, other: Measured | None) -> float | None:
        """The median of the paired ratios; without pairs, the ratio of the medians."""
        paired = self.paired_ratios(other)
        if paired:
            return statistics.median(paired)
        if other is None or self.kafkaboot is None:
            return None
        return self._one(self.kafkaboot.median, other.median)

    @property
    def ratio_vs_raw(self) -> float | None:
        return self._ratio(self.raw)

    @property
    def ratio_vs_faststream(self) -> float | None:
        return self._ratio(self.faststream)

    def as_json(self) -> dict[str, Any]:
        def side(m: Measured | None) -> dict[str, Any] | None:
            if m is None:
                return None
            low, high = m.spread
            return {"median": m.median, "min": low, "max": high, "runs": m.values}

        return {
            "group": self.group,
            "scenario": self.scenario,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "kafkaboot": side(self.kafkaboot),
            "raw": side(self.raw),
            "faststream": side(self.faststream),
            "ratio_vs_raw": self.ratio_vs_raw,
            "ratio_vs_faststream": self.ratio_vs_faststream,
            "paired_ratios_vs_raw": self.paired_ratios(self.raw),
            "paired_ratios_vs_faststream": self.paired_ratios(self.faststream),
            "target": self.target,
            "note": self.note,
            **({"extra": self.extra} if self.extra else {}),
        }


def repeat(runs: int, *variants: Callable[[], Any]) -> list[list[Any]]:
    """Run the variants in turn, ``runs`` times, so that drift in the machine's state
    (page cache, broker compaction, CPU heat) touches each of them alike."""
    results: list[list[Any]] = [[] for _ in variants]
    for _ in range(runs):
        for index, variant in enumerate(variants):
            results[index].append(variant())
    return results


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def aiokafka_c_extensions() -> bool:
    """Whether aiokafka's Cython record parsers are in use (they decide much of the speed)."""
    try:
        from aiokafka.record import _crecords  # type: ignore[attr-defined]  # noqa: F401
    except ImportError:
        return False
    return not os.environ.get("AIOKAFKA_NO_EXTENSIONS")


def environment(kafka_version: str) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "kafka": kafka_version,
        "kafkaboot": _version("kafkaboot"),
        "aiokafka": _version("aiokafka"),
        "aiokafka_c_extensions": aiokafka_c_extensions(),
        "pydantic": _version("pydantic"),
        "faststream": _version("faststream"),
        "orjson": _version("orjson"),
    }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in {"records/s", "msg/s", "ops/s"}:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _cell(measured: Measured | None, unit: str) -> str:
    if measured is None:
        return "—"
    low, high = measured.spread
    if len(measured.values) == 1:
        return _fmt(measured.median, unit)
    return f"{_fmt(measured.median, unit)} ({_fmt(low, unit)}-{_fmt(high, unit)})"


def _ratio(value: float | None, paired: list[float] | None = None) -> str:
    if value is None:
        return "—"
    if not paired:
        return f"{value:.2f}"
    return f"{value:.2f} ({min(paired):.2f}-{max(paired):.2f})"


def markdown(rows: Iterable[Row], env: dict[str, Any], title: str) -> str:
    lines = [
        f"## {title}",
        "",
        "| scenario | unit | kafkaboot | raw aiokafka | FastStream | ratio vs raw | "
        "ratio vs FastStream | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    for row in rows:
        lines.append(
            f"| {row.scenario} | {row.unit} | {_cell(row.kafkaboot, row.unit)} | "
            f"{_cell(row.raw, row.unit)} | {_cell(row.faststream, row.unit)} | "
            f"{_ratio(row.ratio_vs_raw, row.paired_ratios(row.raw))} | "
            f"{_ratio(row.ratio_vs_faststream, row.paired_ratios(row.faststream))} | "
            f"{row.target} |"
        )
        if row.note:
            notes.append(f"- **{row.scenario}**: {row.note}")
    lines += [
        "",
        "Medians, with the spread of the runs in brackets. A ratio is the median of the "
        "ratios of paired runs (kafkaboot and the baseline run back to back), with their "
        "range in brackets; where runs do not pair up, the ratio of the medians. A ratio "
        "above 1 means kafkaboot is faster (for times, the ratio is inverted).",
        "",
    ]
    lines += notes
    lines += ["", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), ""]
    return "\n".join(lines)


def write(rows: list[Row], env: dict[str, Any], title: str, quick: bool) -> Path:
    """Write ``latest.json`` and ``latest.md`` (``quick.*`` for quick runs, which say that
    the suite works, not how fast it is). Entries of scenario groups this run did not
    measure are kept from the previous file, with the environment they were measured in."""
    RESULTS.mkdir(exist_ok=True)
    stem = "quick" if quick else "latest"
    path = RESULTS / f"{stem}.json"
    entries = [r.as_json() for r in rows]
    measured = {r.group for r in rows}
    if path.exists():
        previous = json.loads(path.read_text())
        kept = [e for e in previous.get("scenarios", []) if e.get("group") not in measured]
        for entry in kept:
            entry.setdefault("measured_in", previous.get("environment"))
        entries = kept + entries
    rank = {group: index for index, group in enumerate(GROUPS)}
    entries.sort(key=lambda e: rank.get(e.get("group", ""), len(GROUPS)))
    data = {"title": title, "quick": quick, "environment": env, "scenarios": entries}
    path.write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown_from_json(data))
    return path


def markdown_from_json(data: dict[str, Any]) -> str:
    """The Markdown table of a results file (so kept entries appear too)."""

    def measured(side: dict[str, Any] | None) -> Measured | None:
        return None if side is None else Measured(list(side["runs"]))

    rows = [
        Row(
            e["scenario"],
            e["unit"],
            measured(e["kafkaboot"]),
            measured(e["raw"]),
            measured(e["faststream"]),
            higher_is_better=e["higher_is_better"],
            target=e.get("target", ""),
            note=e.get("note", ""),
            group=e.get("group", ""),
        )
        for e in data["scenarios"]
    ]
    return markdown(rows, data["environment"], data["title"])
