"""The benchmark table's arithmetic: ratios point the same way for rates and times, and a
partial run keeps the other scenarios' results."""

import json

import pytest

from bench import harness
from bench.harness import Measured, Row


def test_ratios_above_one_mean_kafkaboot_is_faster_for_rates_and_times():
    rate = Row(
        "r", "records/s", Measured([90, 100, 110]), raw=Measured([50]), faststream=Measured([10])
    )
    assert rate.ratio_vs_raw == pytest.approx(2.0)
    assert rate.ratio_vs_faststream == pytest.approx(10.0)
    time = Row("t", "µs/record", Measured([2.0]), raw=Measured([1.0]), higher_is_better=False)
    assert time.ratio_vs_raw == pytest.approx(0.5)
    assert time.ratio_vs_faststream is None


def test_a_partial_run_keeps_the_other_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    env = {"cpus": 2}
    harness.write(
        [
            Row("a", "ops/s", Measured([1.0]), group="a"),
            Row("b", "ops/s", Measured([2.0]), group="b"),
        ],
        env,
        "first",
        quick=False,
    )
    harness.write([Row("b", "ops/s", Measured([3.0]), group="b")], env, "second", quick=False)
    data = json.loads((tmp_path / "latest.json").read_text())
    assert [(e["scenario"], e["kafkaboot"]["median"]) for e in data["scenarios"]] == [
        ("a", 1.0),
        ("b", 3.0),
    ]
    assert data["scenarios"][0]["measured_in"] == env
    assert {"ratio_vs_raw", "ratio_vs_faststream", "raw", "faststream"} <= set(data["scenarios"][0])
    assert "| b | ops/s | 3 |" in (tmp_path / "latest.md").read_text()


def test_the_performance_page_shows_the_latest_results():
    from pathlib import Path

    root = Path(__file__).parents[2]
    table = (root / "bench" / "results" / "latest.md").read_text()
    page = (root / "docs" / "performance.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows
    missing = [row for row in rows if row not in page]
    assert not missing, "docs/performance.md is behind bench/results/latest.md: " + missing[0]


def test_ratios_come_from_paired_runs_with_their_range():
    # Run 2 was slow for both (the machine drifted): pairing cancels it out.
    row = Row("r", "records/s", Measured([100, 50, 110]), raw=Measured([100, 50, 100]))
    assert row.paired_ratios(row.raw) == pytest.approx([1.0, 1.0, 1.1])
    assert row.ratio_vs_raw == pytest.approx(1.0)  # The ratio of the medians says 1.0 too...
    drifted = Row("d", "records/s", Measured([100, 100, 60]), raw=Measured([100, 60, 60]))
    assert drifted.ratio_vs_raw == pytest.approx(1.0)  # ...here it would say 100/60 = 1.67.
    table = harness.markdown([row], {}, "t")
    assert "| 1.00 (1.00-1.10) |" in table


def test_runs_that_do_not_pair_up_fall_back_to_the_medians():
    row = Row("r", "records/s", Measured([90, 110]), raw=Measured([50]))
    assert row.paired_ratios(row.raw) is None
    assert row.ratio_vs_raw == pytest.approx(2.0)
    assert row.as_json()["paired_ratios_vs_raw"] is None


def _ceiling(kind, value, bounds="consume"):
    return Row(
        f"{bounds} ceiling: {kind}",
        "records/s",
        None,
        group="ceilings",
        ceiling=Measured([value]),
        ceiling_kind=kind,
        ceiling_for=bounds,
    )


def test_each_kafkaboot_row_gets_its_ratio_to_the_ceilings_of_its_group(tmp_path):
    rows = [
        Row("listener", "records/s", Measured([50.0]), raw=Measured([40.0]), group="consume"),
        Row("send", "records/s", Measured([10.0]), raw=Measured([20.0]), group="produce"),
        _ceiling("librdkafka", 100.0),
        _ceiling("java", 200.0),
    ]
    harness.write(rows, {"cpus": 2}, "t", quick=False, into=tmp_path)
    data = json.loads((tmp_path / "latest.json").read_text())
    by_name = {e["scenario"]: e for e in data["scenarios"]}
    assert by_name["listener"]["ratio_vs_ceilings"] == pytest.approx(
        {"librdkafka": 0.5, "java": 0.25}
    )
    assert by_name["send"]["ratio_vs_ceilings"] == {}  # No produce ceiling in this run.
    ceiling = by_name["consume ceiling: librdkafka"]
    assert ceiling["ceiling"]["median"] == 100.0
    assert ceiling["raw"]["median"] == 40.0  # The raw aiokafka loop of the group it bounds.
    table = (tmp_path / "latest.md").read_text()
    assert "| ratio vs librdkafka | ratio vs Kafka Java tool | target |" in table
    assert "| listener | records/s | 50 | 40 | — | 1.25 | — | 0.50 | 0.25 |  |" in table
    assert "| consume ceiling: librdkafka | records/s | 100 | 40 | 0.40 |" in table
    assert table.count("| consume ceiling:") == 2  # In their own table, not the main one.


def test_ceilings_of_an_earlier_run_give_no_ratio(tmp_path):
    env = {"cpus": 2}
    harness.write([_ceiling("librdkafka", 100.0)], env, "first", quick=False, into=tmp_path)
    listener = Row("listener", "records/s", Measured([50.0]), group="consume")
    harness.write([listener], env, "second", quick=False, into=tmp_path)
    data = json.loads((tmp_path / "latest.json").read_text())
    by_name = {e["scenario"]: e for e in data["scenarios"]}
    assert by_name["listener"]["ratio_vs_ceilings"] == {}
    assert by_name["consume ceiling: librdkafka"]["measured_in"] == env


def test_steal_is_the_share_of_the_machines_cpu_time_between_two_readings():
    from bench.services import steal_percent

    assert steal_percent((10.0, 100.0), (15.0, 150.0)) == 10.0
    assert steal_percent((1.0, 100.0), (1.0, 100.0)) == 0.0
