"""Apache Kafka's own perf tools (``kafka-producer-perf-test``, ``kafka-consumer-perf-test``)
run from the broker's jars, for the ceiling rows.

The broker's classpath (:func:`kafkaboot.testing.distribution.kafka_classpath`) has every
dependency the tools need but not the ``kafka-tools`` jar itself: Maven fetches that one jar,
of the broker's version, once and caches it beside the broker's jars.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kafkaboot.testing.distribution import cache_dir, find_java, kafka_classpath, kafka_version

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kafkaboot.bench</groupId><artifactId>kafka-tools</artifactId><version>1</version>
  <dependencies>
    <!-- The tools jar alone: its dependencies are the broker's, already on the classpath. -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{version}</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion>
      </exclusions></dependency>
  </dependencies>
</project>
"""
_JVM = ["-Xmx512m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
_TIMEOUT_S = 600


def _tools_jar(version: str) -> Path:
    root = cache_dir() / "kafka-tools"
    root.mkdir(parents=True, exist_ok=True)
    jar = root / version / f"kafka-tools-{version}.jar"
    with (root / f"{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # One bench process fetches, others wait.
        if not jar.is_file():
            _fetch(version, jar.parent)
    return jar


def _fetch(version: str, target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("the ceiling rows need Maven (apt-get install maven) for kafka-tools")
    work = target.parent / f"{version}.resolving"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "pom.xml").write_text(_POM.format(version=version))
    command = [mvn, "-B", "-q", "-f", str(work / "pom.xml"), "dependency:copy-dependencies"]
    command += [f"-DoutputDirectory={work / 'libs'}", "-DincludeScope=runtime"]
    result = subprocess.run(  # noqa: S603 - a fixed Maven command line.
        command, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise RuntimeError(f"Maven could not fetch kafka-tools {version}:\n{tail}")
    shutil.rmtree(target, ignore_errors=True)
    (work / "libs").rename(target)
    shutil.rmtree(work, ignore_errors=True)


def classpath(version: str | None = None) -> str:
    """The broker's jars of ``version`` (default: the broker kafkaboot runs) plus kafka-tools."""
    version = version or kafka_version()
    jars = [*kafka_classpath(version), _tools_jar(version)]
    return ":".join(str(jar) for jar in jars)


def _java(cp: str, main: str, args: list[str]) -> str:
    command = [find_java(), *_JVM, "-cp", cp, main, *args]
    result = subprocess.run(  # noqa: S603 - java with arguments built here.
        command, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{main} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


@dataclass(frozen=True)
class ProducerResult:
    records: int
    per_second: float
    p99_ms: float


_PRODUCED = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec .*?, ([\d.]+) ms 99th, [\d.]+ ms 99\.9th\."
)


def parse_producer(output: str) -> ProducerResult:
    """The summary line of ``ProducerPerformance``: ``N records sent, R records/sec (...),
    ... ms 99th, ... ms 99.9th.`` (the last one, when warm-up adds a steady-state line).

    Raises:
        ValueError: no summary line in ``output``.
    """
    found = _PRODUCED.findall(output)
    if not found:
        raise ValueError(f"no ProducerPerformance summary in:\n{output[-2000:]}")
    records, rate, p99 = found[-1]
    return ProducerResult(int(records), float(rate), float(p99))


def produce(
    cp: str, bootstrap: str, topic: str, records: int, payloads: Path, props: dict[str, str]
) -> ProducerResult:
    """``kafka-producer-perf-test``, unthrottled, with the payloads of ``payloads`` (one a line;
    the tool picks one at random per record) and the producer properties ``props``."""
    # The spellings that Kafka 3.9 and 4.x both take (4.x calls them deprecated).
    args = ["--topic", topic, "--num-records", str(records), "--throughput", "-1"]
    args += ["--payload-file", str(payloads), "--producer-props", f"bootstrap.servers={bootstrap}"]
    args += [f"{key}={value}" for key, value in props.items()]
    result = parse_producer(_java(cp, "org.apache.kafka.tools.ProducerPerformance", args))
    if result.records < records:  # The tool counts acknowledged records only.
        raise RuntimeError(f"ProducerPerformance had {result.records} of {records} acknowledged")
    return result


@dataclass(frozen=True)
class ConsumerResult:
    records: int
    per_second: float
    """``fetch.nMsg.sec``: records per second after the group join (``rebalance.time.ms``),
    as the Python loops start their clocks at the first records."""
    rebalance_ms: float


def parse_consumer(output: str) -> ConsumerResult:
    """The CSV line under ``ConsumerPerformance``'s header (``start.time, end.time,
    data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms,
    fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec``).

    Raises:
        ValueError: no header and line of values in ``output``.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    header = next((line for line in lines if line.startswith("start.time,")), None)
    if header is not None:
        names = [name.strip() for name in header.split(",")]
        # The values follow the header; a warning line may come between them.
        for line in lines[lines.index(header) + 1 :]:
            fields = [field.strip() for field in line.split(",")]
            if len(fields) != len(names):
                continue
            values = dict(zip(names, fields, strict=True))
            try:
                return ConsumerResult(
                    int(values["data.consumed.in.nMsg"]),
                    float(values["fetch.nMsg.sec"]),
                    float(values["rebalance.time.ms"]),
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"unexpected ConsumerPerformance line: {line}") from exc
    raise ValueError(f"no ConsumerPerformance result in:\n{output[-2000:]}")


def consume(cp: str, bootstrap: str, topic: str, records: int, group: str) -> ConsumerResult:
    """``kafka-consumer-perf-test`` reading ``records`` from the start of ``topic`` in a new
    group (the tool's own consumer settings: auto-commit, 1 MB per-partition fetches)."""
    args = ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records)]
    args += ["--group", group, "--timeout", "60000"]
    result = parse_consumer(_java(cp, "org.apache.kafka.tools.ConsumerPerformance", args))
    if result.records < records:
        raise RuntimeError(f"ConsumerPerformance read {result.records} of {records} records")
    return result
