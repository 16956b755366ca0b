"""docs/operations.md's worked example, run as written against a real 3-node cluster: the
seeds' 15-partition topic on two brokers each, described, written to, tailed, and its
consumer group's lag."""

import json

from kafkaboot.cli import main
from kafkaboot.testing import unique_name


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_the_worked_example(kafka_cluster, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # No application.yml here: --bootstrap-servers says where.
    monkeypatch.delenv("KAFKABOOT_CONFIG", raising=False)
    cluster = ["--bootstrap-servers", kafka_cluster.bootstrap_servers]
    topic, group = unique_name("events"), unique_name("central")

    run(
        capsys,
        "topics",
        "create",
        topic,
        "--partitions",
        "15",
        "--replication-factor",
        "2",
        "--topic-config",
        "retention.ms=604800000",
        *cluster,
    )
    described = json.loads(run(capsys, "topics", "describe", topic, "--format", "json", *cluster))
    assert len(described["partitions"]) == 15
    assert all(len(p["replicas"]) == 2 and len(p["isr"]) == 2 for p in described["partitions"])
    assert len({p["leader"] for p in described["partitions"]}) == 3  # Spread over the brokers.
    assert described["configs"]["retention.ms"] == "604800000"

    value = '{"customer_id": "site-7", "sequence": 0}'
    [sent] = json.loads(
        run(capsys, "send", topic, "--key", "site-7", value, "--format", "json", *cluster)
    )
    lines = run(
        capsys,
        "consume",
        topic,
        "--max",
        "10",
        "--group",
        group,
        "--commit",
        "--format",
        "json",
        *cluster,
    )
    [record] = [json.loads(line) for line in lines.splitlines()]
    assert (record["partition"], record["offset"], record["key"]) == (
        sent["partition"],
        0,
        "site-7",
    )

    groups = json.loads(run(capsys, "groups", "list", "--format", "json", *cluster))
    assert group in {g["group"] for g in groups["groups"]}
    lag = json.loads(run(capsys, "groups", "describe", group, "--format", "json", *cluster))
    [partition] = [p for p in lag["partitions"] if p["partition"] == sent["partition"]]
    assert (partition["committed"], partition["lag"]) == (1, 0)
