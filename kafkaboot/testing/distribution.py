"""The Apache Kafka broker jars, resolved with Maven and cached per version.

No Docker is needed: Java and Maven fetch the official broker artifacts from Maven Central
once; later starts read the cache and need no network.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from kafkaboot.errors import BrokerError

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "KAFKA_VERSION_ENV",
    "cache_dir",
    "find_java",
    "kafka_classpath",
    "kafka_version",
]

DEFAULT_KAFKA_VERSION = "4.3.1"
"""The newest Kafka release tested with aiokafka (4.4.0's artifacts are incomplete on
Maven Central); 3.9.x is tested too, through ``KAFKABOOT_KAFKA_VERSION``."""
KAFKA_VERSION_ENV = "KAFKABOOT_KAFKA_VERSION"
CACHE_DIR_ENV = "KAFKABOOT_CACHE_DIR"
_SLF4J_VERSION = "2.0.17"
_MAVEN_TIMEOUT_S = 900
_COMPLETE_MARKER = ".complete"

_ALTERNATIVES = (
    "Alternatives: run the 3-broker cluster in deploy/docker-compose.yml with Docker, or set "
    "kafka.bootstrap-servers (KAFKABOOT_TEST_BOOTSTRAP for tests) to an existing cluster."
)

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kafkaboot</groupId>
  <artifactId>kafka-broker-{version}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <!-- One logging backend for every Kafka version: Kafka 3.x and 4.x ship different ones. -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>{slf4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def kafka_version(environ: Mapping[str, str] | None = None) -> str:
    """The Kafka version to run: ``$KAFKABOOT_KAFKA_VERSION`` or the pinned default."""
    environ = os.environ if environ is None else environ
    return environ.get(KAFKA_VERSION_ENV) or DEFAULT_KAFKA_VERSION


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where kafkaboot caches broker jars: ``$KAFKABOOT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/kafkaboot``, else ``~/.cache/kafkaboot``."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_DIR_ENV):
        return Path(environ[CACHE_DIR_ENV])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kafkaboot"


def find_java() -> str:
    """The ``java`` executable (``$JAVA_HOME/bin/java`` first).

    Raises:
        BrokerError: no Java runtime is installed.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "Java is not installed, and the Apache Kafka broker runs on Java 17 or later. "
            f"Install it (apt-get install openjdk-17-jre-headless). {_ALTERNATIVES}"
        )
    return java


def _resolve_with_maven(version: str, target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is not installed; kafkaboot uses it once to fetch the Apache Kafka "
            f"{version} jars. Install it (apt-get install maven). {_ALTERNATIVES}"
        )
    work = target.parent / f"{target.name}.resolving"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "pom.xml").write_text(_POM.format(version=version, slf4j=_SLF4J_VERSION))
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(work / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={work / 'libs'}",
        "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(  # noqa: S603 - a fixed Maven command line.
            command, capture_output=True, text=True, timeout=_MAVEN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(
            f"Maven did not finish fetching Kafka {version} within {_MAVEN_TIMEOUT_S}s; "
            "check that Maven Central is reachable and try again."
        ) from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise BrokerError(
            f"Maven could not fetch Apache Kafka {version}:\n{tail}\n"
            f"Check that the version exists (the default is {DEFAULT_KAFKA_VERSION}) and that "
            "Maven Central is reachable."
        )
    shutil.rmtree(target, ignore_errors=True)
    (work / "libs").rename(target)
    (target / _COMPLETE_MARKER).write_text(version)
    shutil.rmtree(work, ignore_errors=True)


def kafka_classpath(version: str | None = None, *, cache: Path | None = None) -> list[Path]:
    """The broker's jars for ``version``, fetched with Maven on first use.

    Safe to call from several processes at once: one fetches while the others wait.

    Raises:
        BrokerError: Maven is missing, or the version cannot be fetched.
    """
    version = version or kafka_version()
    root = (cache or cache_dir()) / "kafka"
    root.mkdir(parents=True, exist_ok=True)
    libs = root / version / "libs"
    with (root / f"{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (libs / _COMPLETE_MARKER).is_file():
            _resolve_with_maven(version, libs)
    return sorted(libs.glob("*.jar"))
