"""The latency scenario's breakdown: each part of the path from the per-record stamps."""

from bench.scenarios import latency

MS = 1_000_000


def test_each_part_is_the_span_between_its_two_stamps():
    # n, due, sent, answered, status: the load generator's line for one request.
    requests = [[0, 0, 1 * MS, 9 * MS, 202]]
    # (partition, offset) -> n, sent, accepted, appended.
    records = {(3, 7): (0, 1 * MS, 2 * MS, 4 * MS)}
    handled = {(3, 7): 12 * MS}
    parts = latency.breakdown(requests, records, handled)
    expected = {
        "client → accepted (HTTP in, FastAPI, pydantic)": 1.0,
        "accepted → appended (template send, linger, broker)": 2.0,
        "appended → answered (broker ack, HTTP answer)": 5.0,
        "appended → handled (fetch, poll, dispatch, handler)": 8.0,
        "accepted → handled (end to end)": 10.0,
        "client → answered (HTTP round trip)": 8.0,
        "due → sent (load generator lag)": 1.0,
    }
    assert {part: q["p50"] for part, q in parts.items()} == expected
    assert all(q["count"] == 1 for q in parts.values())


def test_records_not_seen_at_every_stamp_are_left_out():
    requests = [[0, 0, 0, MS, 202], [1, 0, 0, MS, 202]]
    records = {(0, 0): (0, 0, 0, 0), (0, 1): (1, 0, 0, 0), (0, 2): (5, 0, 0, 0)}
    handled = {(0, 0): MS}  # (0, 1) not journaled; (0, 2) no request of that n.
    parts = latency.breakdown(requests, records, handled)
    assert all(q["count"] == 1 for q in parts.values())


def test_quantiles_pick_the_nearest_rank():
    values = [float(v) for v in range(1, 1001)]
    assert latency.quantiles(values) == {"p50": 501.0, "p99": 991.0, "p99.9": 1000.0}


def _result(p99):
    parts = {part: {"p50": 1.0, "p99": p99, "p99.9": p99} for part in latency.PARTS}
    cpu = {"producer": 1.0, "consumer": 1.0, "load generator": 1.0, "machine": 4.0}
    return {"p50": 1.0, "p99": p99, "p99.9": p99, "parts": parts, "accepted": 5, "sent": 5,
            "cpu_s": cpu, "steal_percent": 2.0}  # fmt: skip


def test_the_servers_other_choice_has_rows_of_its_own_without_the_targets():
    targets = {(500, "p99"): "≤ 15 ms"}
    main = latency._rows(500, 10, latency.FAST, [_result(9.0)], targets, main=True)
    plain = latency._rows(500, 10, latency.PLAIN, [_result(20.0)], targets, main=False)
    assert [r.scenario for r in main][1] == "latency: HTTP POST → listener at 500 msg/s, p99"
    assert [r.scenario for r in plain][1] == (
        "latency: HTTP POST → listener at 500 msg/s (asyncio + h11), p99"
    )
    assert main[1].target == "≤ 15 ms"
    assert plain[1].target == ""
    assert main[0].note.startswith("services on uvicorn with uvloop and httptools")
    assert plain[0].note.startswith("services on uvicorn with asyncio and h11")


def test_the_fast_pair_comes_first_only_where_it_is_installed(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert latency.server_choices() == [latency.PLAIN]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert latency.server_choices() == [latency.FAST, latency.PLAIN]


def test_the_cpu_time_the_hypervisor_stole_is_reported_with_the_rows():
    rows = latency._rows(500, 10, latency.FAST, [_result(9.0), _result(12.0)], {}, main=True)
    assert "stolen by the hypervisor during the loads: 2 %" in rows[0].note
    assert rows[0].extra["steal_percent"] == [2.0, 2.0]


def test_the_broker_ack_rows_are_a_reference_without_a_kafkaboot_column():
    acks = [{"p50": 1.0, "p99": 9.0, "p99.9": 20.0, "steal_percent": 1.5}] * 2
    rows = latency._ack_rows(500, acks)
    assert [r.scenario.rsplit(", ", 1)[1] for r in rows] == ["p50", "p99", "p99.9"]
    assert all(r.kafkaboot is None and not r.target for r in rows)
    assert rows[1].raw.values == [9.0, 9.0]
    assert "not kafkaboot" in rows[0].note
    assert "stolen: 1.5 %" in rows[0].note
