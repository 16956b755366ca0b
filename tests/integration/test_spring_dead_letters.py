"""kafkaboot's dead letters against spring-kafka's own, written on the same broker for the
same input by spring-kafka 3.3.16's real ``DeadLetterPublishingRecoverer`` and
``@RetryableTopic`` chain (java/SpringDeadLetters.java): the same header names in the same
order, the same bytes, except where the two must differ (the source topic, the group, the
timestamps, the exception's own class and the stack trace after its first line)."""

import asyncio
import subprocess
from pathlib import Path

import pytest

from kafkaboot import (
    ConsumerRecord,
    FixedBackOff,
    ListenerRegistry,
    load_settings,
    retryable_topic,
)
from kafkaboot.cli import main as cli_main
from kafkaboot.errorhandling.headers import java_big_integer
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import create_topic, produce, read_all, unique
from .spring_kafka_jars import spring_kafka_classpath

pytestmark = pytest.mark.asyncio

JAVA = Path(__file__).parent / "java" / "SpringDeadLetters.java"
KEY, VALUE, HEADERS = b"k1", b'{"id": 1}', [("trace", b"abc")]
JAVA_CAUSE = "java.lang.IllegalStateException"


async def spring_dead_letters(bootstrap, mode):
    """Run Spring on a fresh topic; (source topic, group)."""
    topic, group = await create_topic(bootstrap), unique("spring")
    await produce(bootstrap, topic, [VALUE], key=KEY, headers=HEADERS)
    classpath = await asyncio.to_thread(spring_kafka_classpath)
    await asyncio.to_thread(
        subprocess.run,
        ["java", "-cp", classpath, str(JAVA), bootstrap, topic, group, mode],
        capture_output=True,
        check=True,
        timeout=180,
    )
    return topic, group


async def kafkaboot_dead_letters(bootstrap, handler, retry=None):
    """Run kafkaboot's recoverer (or retry chain) on a fresh topic; (source topic, group)."""
    topic, group = await create_topic(bootstrap), unique("kb")
    await produce(bootstrap, topic, [VALUE], key=KEY, headers=HEADERS)
    error_handler = {"backoff": {"max-attempts": 1}, "dead-letter": {"enabled": True}}
    overrides = {
        "bootstrap-servers": bootstrap,
        "consumer": {"auto-offset-reset": "earliest"},
        "listener": {"error-handler": error_handler},
    }
    settings = load_settings(environ={}, overrides={"kafka": overrides})
    template = KafkaTemplate(settings)
    await template.start()
    try:
        registry = ListenerRegistry(settings, environ={}, template=template)
        if retry is not None:
            handler = retry(handler)
        registry.listener(topic, group_id=group, id=unique("l"))(handler)
        async with registry:
            await read_all(bootstrap, f"{topic}-dlt", 1)
    finally:
        await template.stop()
    return topic, group


def shape(record, source, group):
    """The headers with what must differ between Spring and kafkaboot made comparable."""
    found = []
    for name, value in record.headers:
        if name.endswith("original-topic"):
            value = ("the source topic", value == source.encode())
        elif name == "kafka_dlt-original-consumer-group":
            value = ("the main group", value == group.encode())
        elif name in ("kafka_dlt-original-timestamp", "kafka_original-timestamp"):
            value = ("8 bytes", len(value))
        elif name.startswith("retry_topic-") and name.endswith("timestamp"):
            number = int.from_bytes(value, "big", signed=True)
            value = ("BigInteger bytes", value == java_big_integer(number), number > 0)
        elif name.endswith("cause-fqcn"):
            value = "the exception's own class"
        elif name.endswith("exception-message"):
            value = ("message", value.split(b";")[0])
        elif name.endswith("stacktrace"):
            value = ("first line", value.split(b"\n")[0])
        found.append((name, value))
    return found


async def compare(bootstrap, mode, handler, *, cause, their_cause=JAVA_CAUSE, retry=None):
    """Spring's and kafkaboot's records for the same input, compared; per topic suffix
    (``-dlt``, and for the retry chain first ``-retry``) both records' headers."""
    spring, spring_group = await spring_dead_letters(bootstrap, mode)
    ours, our_group = await kafkaboot_dead_letters(bootstrap, handler, retry)
    # Spring's retry topic for a fixed delay is "-retry" (one topic), kafkaboot's "-retry-0".
    suffixes = {"-retry": "-retry-0", "-dlt": "-dlt"} if retry else {"-dlt": "-dlt"}
    pairs = {}
    for theirs_suffix, mine_suffix in suffixes.items():
        theirs = (await read_all(bootstrap, spring + theirs_suffix, 1))[0]
        mine = (await read_all(bootstrap, ours + mine_suffix, 1))[0]
        assert (mine.key, mine.value) == (theirs.key, theirs.value) == (KEY, VALUE)
        assert shape(mine, ours, our_group) == shape(theirs, spring, spring_group)
        mine_headers, their_headers = dict(mine.headers), dict(theirs.headers)
        [cause_header] = [name for name in mine_headers if name.endswith("cause-fqcn")]
        assert mine_headers[cause_header] == cause.encode()
        assert their_headers[cause_header] == their_cause.encode()
        pairs[theirs_suffix] = mine_headers, their_headers
    return pairs


async def fails(record: ConsumerRecord[bytes, bytes]) -> None:
    raise RuntimeError("boom")


async def fails_with_cause(record: ConsumerRecord[bytes, bytes]) -> None:
    try:
        raise OSError("disk")
    except OSError as exc:
        raise RuntimeError("boom") from exc


async def wants_an_int(value: int) -> None:  # b'{"id": 1}' is no int.
    raise AssertionError("never called")


async def test_a_listener_failure_dead_letter_matches_springs(kafka_bootstrap):
    pairs = await compare(kafka_bootstrap, "plain", fails, cause="builtins.RuntimeError")
    mine, theirs = pairs["-dlt"]
    assert theirs["kafka_dlt-exception-message"] == b"Listener failed; boom"
    assert mine["kafka_dlt-exception-message"] == theirs["kafka_dlt-exception-message"]


async def test_a_failure_with_a_cause_matches_springs(kafka_bootstrap):
    # Spring names the listener's exception, not its cause: so does kafkaboot.
    pairs = await compare(kafka_bootstrap, "cause", fails_with_cause, cause="builtins.RuntimeError")
    mine, theirs = pairs["-dlt"]
    assert mine["kafka_dlt-exception-message"] == theirs["kafka_dlt-exception-message"]
    assert b"OSError: disk" in mine["kafka_dlt-exception-stacktrace"]


async def test_an_undecodable_value_dead_letter_matches_springs(kafka_bootstrap):
    pairs = await compare(
        kafka_bootstrap,
        "deser",
        wants_an_int,
        cause="kafkaboot.errors.DeserializationError",
        their_cause="org.springframework.kafka.support.serializer.DeserializationException",
    )
    mine, theirs = pairs["-dlt"]
    assert theirs["kafka_dlt-exception-message"] == b"failed to deserialize"
    assert mine["kafka_dlt-exception-message"].startswith(b"failed to deserialize; ")


async def test_the_retry_chain_forwards_and_dead_letters_as_springs(kafka_bootstrap):
    retry = retryable_topic(attempts=3, backoff=FixedBackOff(0.1))
    pairs = await compare(
        kafka_bootstrap, "retry", fails, cause="builtins.RuntimeError", retry=retry
    )
    for mine, theirs in pairs.values():
        assert mine["kafka_exception-message"] == theirs["kafka_exception-message"]
        assert mine["retry_topic-attempts"] == theirs["retry_topic-attempts"]
    assert pairs["-dlt"][0]["retry_topic-attempts"] == b"\x00\x00\x00\x04"


async def test_dlt_replay_sends_springs_retry_chain_dead_letter_back(
    kafka_bootstrap, monkeypatch, tmp_path, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    topic, _ = await spring_dead_letters(kafka_bootstrap, "retry")
    assert await asyncio.to_thread(cli_main, ["dlt", "replay", f"{topic}-dlt"]) == 0
    assert f"re-published 1 dead letter(s) from {topic}-dlt to {topic}" in capsys.readouterr().out
    original, replayed = await read_all(kafka_bootstrap, topic, 2)
    assert (replayed.partition, replayed.key, replayed.value) == (0, KEY, VALUE)
    from_ = f"{topic}-dlt-0@0".encode()
    assert replayed.headers == (*original.headers, ("kafkaboot_replayed-from", from_))
