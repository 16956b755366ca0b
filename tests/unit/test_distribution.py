"""Fetching the Apache Kafka jars: cache location and clear errors when tools are missing."""

from pathlib import Path

import pytest

from kafkaboot.errors import BrokerError
from kafkaboot.testing import distribution


def test_cache_dir_precedence(tmp_path):
    assert distribution.cache_dir({"KAFKABOOT_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert distribution.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/kafkaboot")
    assert distribution.cache_dir({}) == Path.home() / ".cache" / "kafkaboot"


def test_version_from_environment_or_pinned_default():
    assert distribution.kafka_version({"KAFKABOOT_KAFKA_VERSION": "3.9.1"}) == "3.9.1"
    assert distribution.kafka_version({}) == distribution.DEFAULT_KAFKA_VERSION


def test_missing_maven_names_the_alternatives(tmp_path, monkeypatch):
    monkeypatch.setattr(distribution.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError) as excinfo:
        distribution.kafka_classpath("4.3.1", cache=tmp_path)
    message = str(excinfo.value)
    assert "Maven (mvn) is not installed" in message
    assert "deploy/docker-compose.yml" in message
    assert "bootstrap-servers" in message


def test_missing_java_names_the_alternatives(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(distribution.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match=r"Java is not installed.*docker-compose"):
        distribution.find_java()


def test_cached_jars_are_used_without_maven(tmp_path, monkeypatch):
    libs = tmp_path / "kafka" / "9.9.9" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka.jar").write_bytes(b"")
    (libs / ".complete").write_text("9.9.9")
    monkeypatch.setattr(distribution.shutil, "which", lambda name: None)
    assert distribution.kafka_classpath("9.9.9", cache=tmp_path) == [libs / "kafka.jar"]
