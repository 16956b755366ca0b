"""spring-kafka's jars (and their dependencies, with jackson-databind for its JSON
serializers), fetched once with Maven and cached next to kafkaboot's broker jars, for tests
that compare kafkaboot with Spring's own code."""

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

from kafkaboot.testing.distribution import cache_dir

SPRING_KAFKA_VERSION = "3.3.16"
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kafkaboot.tests</groupId><artifactId>spring-kafka-jars</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.springframework.kafka</groupId><artifactId>spring-kafka</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>com.fasterxml.jackson.core</groupId>
      <artifactId>jackson-databind</artifactId><version>2.18.1</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-nop</artifactId>
      <version>2.0.16</version></dependency>
  </dependencies>
</project>
"""


def spring_kafka_classpath(version: str = SPRING_KAFKA_VERSION) -> str:
    """A ``java -cp`` value with spring-kafka ``version`` and its runtime dependencies."""
    root = cache_dir() / "spring-kafka"
    root.mkdir(parents=True, exist_ok=True)
    # Keyed by the POM too: a cache filled from another dependency list is not this one.
    pom = hashlib.sha256(_POM.format(version=version).encode()).hexdigest()[:12]
    libs = root / f"{version}-{pom}" / "libs"
    with (root / f"{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # One test process fetches, the others wait.
        if not (libs / ".complete").is_file():
            _fetch(version, libs)
    return ":".join(str(jar) for jar in sorted(libs.glob("*.jar")))


def _fetch(version: str, libs: Path) -> None:
    work = libs.parent / "resolving"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "pom.xml").write_text(_POM.format(version=version))
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("these tests need Maven (apt-get install maven) to fetch spring-kafka")
    result = subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(work / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={work / 'libs'}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"Maven could not fetch spring-kafka {version}:\n{result.stdout}{result.stderr}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    (work / "libs").rename(libs)
    (libs / ".complete").write_text(version)
    shutil.rmtree(work, ignore_errors=True)
