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
GROUPS = (
    "consume",
    "produce",
    "ceilings",
    "dispatch",
    "keyed",
    "latency",
    "fanin",
    "serialization",
    "stored",
)
"""Scenario families, in the order the suite runs them and the table shows them."""
CEILINGS = {"librdkafka": "librdkafka", "java": "Kafka Java tool"}
"""The kinds of ceiling row (``Row.ceiling_kind``) and the names of their ratio columns."""


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
    ceiling: Measured | None = None
    """In a ceiling row (``kafkaboot`` is ``None``): what a client outside the comparison
    (librdkafka, Kafka's Java tools) reaches on this machine and broker, measured in the run."""
    ceiling_kind: str = ""
    """A ceiling row's kind, a key of :data:`CEILINGS`."""
    ceiling_for: str = ""
    """The group whose kafkaboot rows a ceiling row bounds (same unit)."""
    ratio_vs_ceilings: dict[str, float] = dataclasses.field(default_factory=dict)
    """kafkaboot's ratio to each ceiling of its group measured in the same run, by kind: the
    ratio of the medians (the ceilings run as a group of their own, not back to back with
    each kafkaboot variant). Filled in by :func:`write`."""

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
            "ratio_vs_ceilings": self.ratio_vs_ceilings,
            "target": self.target,
            "note": self.note,
            **({"extra": self.extra} if self.extra else {}),
            **(
                {
                    "ceiling": side(self.ceiling),
                    "ceiling_kind": self.ceiling_kind,
                    "ceiling_for": self.ceiling_for,
                }
                if self.ceiling is not None
                else {}
            ),
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


def _librdkafka() -> str | None:
    try:
        import confluent_kafka
    except ImportError:
        return None
    return str(confluent_kafka.libversion()[0])


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
        "confluent-kafka": _version("confluent-kafka"),
        "librdkafka": _librdkafka(),
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


def _ceilings_table(rows: list[Row]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "Ceilings, measured in the same run:",
        "",
        "| ceiling | unit | measured | raw aiokafka | raw aiokafka ÷ ceiling |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.ceiling is None:
            continue
        versus = None if row.raw is None else row._one(row.raw.median, row.ceiling.median)
        lines.append(
            f"| {row.scenario} | {row.unit} | {_cell(row.ceiling, row.unit)} | "
            f"{_cell(row.raw, row.unit)} | {_ratio(versus)} |"
        )
    return lines


def markdown(rows: Iterable[Row], env: dict[str, Any], title: str) -> str:
    ceiling_columns = " | ".join(f"ratio vs {name}" for name in CEILINGS.values())
    lines = [
        f"## {title}",
        "",
        "| scenario | unit | kafkaboot | raw aiokafka | FastStream | ratio vs raw | "
        f"ratio vs FastStream | {ceiling_columns} | target |",
        "| --- | --- | --- | --- | --- | --- | --- | " + "--- | " * len(CEILINGS) + "--- |",
    ]
    notes, ceilings = [], []
    for row in rows:
        if row.note:
            notes.append(f"- **{row.scenario}**: {row.note}")
        if row.ceiling is not None:
            ceilings.append(row)
            continue
        versus = " | ".join(_ratio(row.ratio_vs_ceilings.get(kind)) for kind in CEILINGS)
        lines.append(
            f"| {row.scenario} | {row.unit} | {_cell(row.kafkaboot, row.unit)} | "
            f"{_cell(row.raw, row.unit)} | {_cell(row.faststream, row.unit)} | "
            f"{_ratio(row.ratio_vs_raw, row.paired_ratios(row.raw))} | "
            f"{_ratio(row.ratio_vs_faststream, row.paired_ratios(row.faststream))} | "
            f"{versus} | {row.target} |"
        )
    lines += _ceilings_table(ceilings)
    lines += [
        "",
        "Medians, with the spread of the runs in brackets. A ratio is the median of the "
        "ratios of paired runs (kafkaboot and the baseline run back to back), with their "
        "range in brackets; where runs do not pair up, the ratio of the medians. A ratio "
        "above 1 means kafkaboot is faster (for times, the ratio is inverted). The ratios "
        "to the ceilings (librdkafka through confluent-kafka, Kafka's own Java perf tools) "
        "are ratios of medians: the ceilings run as a group of their own in the same run.",
        "",
    ]
    lines += notes
    lines += ["", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), ""]
    return "\n".join(lines)


def write(
    rows: list[Row], env: dict[str, Any], title: str, quick: bool, into: Path | None = None
) -> Path:
    """Write ``latest.json`` and ``latest.md`` (``quick.*`` for quick runs, which say that
    the suite works, not how fast it is) into ``into`` (default :data:`RESULTS`). Entries
    of scenario groups this run did not measure are kept from the previous file, with the
    environment they were measured in."""
    folder = RESULTS if into is None else into
    folder.mkdir(parents=True, exist_ok=True)
    stem = "quick" if quick else "latest"
    path = folder / f"{stem}.json"
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
    link_ceilings(entries)
    data = {"title": title, "quick": quick, "environment": env, "scenarios": entries}
    path.write_text(json.dumps(data, indent=2) + "\n")
    (folder / f"{stem}.md").write_text(markdown_from_json(data))
    return path


def link_ceilings(entries: list[dict[str, Any]]) -> None:
    """Give each kafkaboot entry its ratios to the ceilings of its group and unit, and each
    ceiling entry the raw aiokafka figure of the group it bounds, where both were measured
    in the same run (kept entries carry the environment of theirs, ``measured_in``)."""

    def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return (
            a.get("measured_in") == b.get("measured_in")
            and a["unit"] == b["unit"]
            and a["higher_is_better"] == b["higher_is_better"]
        )

    ceilings = [e for e in entries if e.get("ceiling")]
    for entry in entries:
        entry["ratio_vs_ceilings"] = {}
    for ceiling in ceilings:
        bound = [
            e for e in entries if e.get("group") == ceiling["ceiling_for"] and same(e, ceiling)
        ]
        best = ceiling["ceiling"]["median"]
        ceiling["raw"] = next((e["raw"] for e in bound if e["raw"]), None)
        for entry in bound:
            ours = entry["kafkaboot"]["median"] if entry["kafkaboot"] else 0
            if ours and best:
                ratio = ours / best if entry["higher_is_better"] else best / ours
                entry["ratio_vs_ceilings"][ceiling["ceiling_kind"]] = ratio


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
            ceiling=measured(e.get("ceiling")),
            ceiling_kind=e.get("ceiling_kind", ""),
            ceiling_for=e.get("ceiling_for", ""),
            ratio_vs_ceilings=e.get("ratio_vs_ceilings", {}),
        )
        for e in data["scenarios"]
    ]
    return markdown(rows, data["environment"], data["title"])
