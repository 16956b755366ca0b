"""Raw Kafka client properties (``linger.ms``, ``max.partition.fetch.bytes``) → aiokafka.

Spring users carry Java client properties over in ``properties:`` maps. Each supported key
is declared once here, with the aiokafka argument it becomes, the clients it applies to and
how its value converts. Security keys (``ssl.*``, ``sasl.*``) are read by
:mod:`kafkaboot.security.client`. A real Kafka client property that aiokafka has no equivalent
for is accepted with a warning naming it (:func:`ignored_properties`); any other name is a
typo, and an error with the closest known names.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from kafkaboot.config.secrets import masked
from kafkaboot.security.names import MECHANISMS, PROTOCOLS

__all__ = [
    "KAFKABOOT_HANDLED",
    "SUPPORTED_PROPERTIES",
    "ClientKind",
    "PropertyMapping",
    "PropertyProblems",
    "ignored_properties",
    "java_client_properties",
    "map_properties",
    "security_properties",
    "validate_properties",
]

ClientKind = Literal["producer", "consumer", "admin"]
_ALL: frozenset[ClientKind] = frozenset({"producer", "consumer", "admin"})
_PRODUCER: frozenset[ClientKind] = frozenset({"producer"})
_CONSUMER: frozenset[ClientKind] = frozenset({"consumer"})


def _int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "on", "1"}:
        return True
    if text in {"false", "no", "off", "0"}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _str(value: Any) -> str:
    return str(value)


def _lower(value: Any) -> str:
    return str(value).strip().lower()


def _upper(value: Any) -> str:
    return str(value).strip().upper()


def _acks(value: Any) -> int | str:
    text = str(value).strip().lower()
    if text in {"all", "-1"}:
        return "all"
    if text in {"0", "1"}:
        return int(text)
    raise ValueError(f"expected all, -1, 0 or 1, got {value!r}")


def _compression(value: Any) -> str | None:
    text = str(value).strip().lower()
    if text == "none":
        return None
    if text in {"gzip", "snappy", "lz4", "zstd"}:
        return text
    raise ValueError(f"expected none, gzip, snappy, lz4 or zstd, got {value!r}")


def _assignors(value: Any) -> tuple[Any, ...]:
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    by_name: dict[str, Any] = {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
        "sticky": StickyPartitionAssignor,
    }
    names = value if isinstance(value, list | tuple) else str(value).split(",")
    chosen = []
    for name in names:
        # org.apache.kafka.clients.consumer.RoundRobinAssignor -> roundrobin
        short = str(name).strip().rsplit(".", 1)[-1].lower().removesuffix("assignor")
        if short not in by_name:
            raise ValueError(
                f"unknown assignor {name!r}; aiokafka offers range, roundrobin, sticky"
            )
        chosen.append(by_name[short])
    return tuple(chosen)


@dataclass(frozen=True, slots=True)
class PropertyMapping:
    """How one Kafka client property becomes one aiokafka keyword argument."""

    kwarg: str
    convert: Callable[[Any], Any]
    clients: frozenset[ClientKind] = _ALL


SUPPORTED_PROPERTIES: Mapping[str, PropertyMapping] = {
    # Common to producer, consumer and admin clients.
    "bootstrap.servers": PropertyMapping("bootstrap_servers", _str),
    "client.id": PropertyMapping("client_id", _str),
    "request.timeout.ms": PropertyMapping("request_timeout_ms", _int),
    "retry.backoff.ms": PropertyMapping("retry_backoff_ms", _int),
    "metadata.max.age.ms": PropertyMapping("metadata_max_age_ms", _int),
    "connections.max.idle.ms": PropertyMapping("connections_max_idle_ms", _int),
    # Producer.
    "acks": PropertyMapping("acks", _acks, _PRODUCER),
    "linger.ms": PropertyMapping("linger_ms", _int, _PRODUCER),
    "batch.size": PropertyMapping("max_batch_size", _int, _PRODUCER),
    "compression.type": PropertyMapping("compression_type", _compression, _PRODUCER),
    "max.request.size": PropertyMapping("max_request_size", _int, _PRODUCER),
    "enable.idempotence": PropertyMapping("enable_idempotence", _bool, _PRODUCER),
    "transactional.id": PropertyMapping("transactional_id", _str, _PRODUCER),
    "transaction.timeout.ms": PropertyMapping("transaction_timeout_ms", _int, _PRODUCER),
    # Consumer.
    "group.id": PropertyMapping("group_id", _str, _CONSUMER),
    "group.instance.id": PropertyMapping("group_instance_id", _str, _CONSUMER),
    "auto.offset.reset": PropertyMapping("auto_offset_reset", _lower, _CONSUMER),
    "enable.auto.commit": PropertyMapping("enable_auto_commit", _bool, _CONSUMER),
    "auto.commit.interval.ms": PropertyMapping("auto_commit_interval_ms", _int, _CONSUMER),
    "max.poll.records": PropertyMapping("max_poll_records", _int, _CONSUMER),
    "max.poll.interval.ms": PropertyMapping("max_poll_interval_ms", _int, _CONSUMER),
    "session.timeout.ms": PropertyMapping("session_timeout_ms", _int, _CONSUMER),
    "heartbeat.interval.ms": PropertyMapping("heartbeat_interval_ms", _int, _CONSUMER),
    "fetch.min.bytes": PropertyMapping("fetch_min_bytes", _int, _CONSUMER),
    "fetch.max.bytes": PropertyMapping("fetch_max_bytes", _int, _CONSUMER),
    "fetch.max.wait.ms": PropertyMapping("fetch_max_wait_ms", _int, _CONSUMER),
    "max.partition.fetch.bytes": PropertyMapping("max_partition_fetch_bytes", _int, _CONSUMER),
    "isolation.level": PropertyMapping("isolation_level", _lower, _CONSUMER),
    "check.crcs": PropertyMapping("check_crcs", _bool, _CONSUMER),
    "exclude.internal.topics": PropertyMapping("exclude_internal_topics", _bool, _CONSUMER),
    "partition.assignment.strategy": PropertyMapping(
        "partition_assignment_strategy", _assignors, _CONSUMER
    ),
    "client.rack": PropertyMapping("client_rack", _str, _CONSUMER),
}
"""Every raw property kafkaboot passes on to aiokafka."""

KAFKABOOT_HANDLED: frozenset[str] = frozenset(
    {
        "delivery.timeout.ms",  # Enforced by KafkaTemplate; aiokafka has no such limit.
        "key.serializer",
        "value.serializer",
        "key.deserializer",
        "value.deserializer",
        # Spring's ErrorHandlingDeserializer reads its delegate from these.
        "spring.deserializer.key.delegate.class",
        "spring.deserializer.value.delegate.class",
        # Spring's JsonSerializer / JsonDeserializer settings: type headers (__TypeId__),
        # type mapping tokens and default types; read by kafkaboot.serialization.
        "spring.json.trusted.packages",
        "spring.json.use.type.headers",
        "spring.json.add.type.headers",
        "spring.json.remove.type.headers",
        "spring.json.type.mapping",
        "spring.json.key.default.type",
        "spring.json.value.default.type",
    }
)
"""Properties kafkaboot reads itself instead of passing them to aiokafka."""

_IGNORED_REASONS = {
    "max.block.ms": "aiokafka's send waits for metadata up to request.timeout.ms",
    "buffer.memory": "aiokafka has no producer buffer limit",
    "retries": "aiokafka retries a send until request.timeout.ms passes",
    "interceptor.classes": "Java classes; use kafka.template.interceptors or "
    "kafka.listener.interceptors (Python import paths)",
    "partitioner.class": "a Java class; kafkaboot partitions keys as Java's default "
    "partitioner does (murmur2)",
    "ssl.cipher.suites": "Java cipher suite names; OpenSSL's defaults apply",
    "security.providers": "Java security providers",
}


def _factor(value: Any) -> float:
    factor = float(value)
    if not 0.5 <= factor <= 1.0:
        raise ValueError("expected a share of a token's lifetime between 0.5 and 1.0")
    return factor


_SECURITY_VALUES: Mapping[str, Callable[[Any], Any]] = {
    "security.protocol": lambda v: _one_of(v, PROTOCOLS),
    "sasl.mechanism": lambda v: _one_of(v, MECHANISMS),
    "sasl.login.refresh.window.factor": _factor,
    "sasl.login.connect.timeout.ms": _int,
    "sasl.login.read.timeout.ms": _int,
}
"""Security properties whose values are checked when the configuration is loaded."""


def _one_of(value: Any, choices: tuple[str, ...]) -> str:
    if _upper(value) not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}")
    return _upper(value)


@functools.cache
def java_client_properties() -> frozenset[str]:
    """Every configuration name of Apache Kafka's Java producer, consumer and admin clients
    (read from the clients' ``ConfigDef``, see ``java_client_properties.tsv``)."""
    text = resources.files("kafkaboot.config").joinpath("java_client_properties.tsv").read_text()
    return frozenset(
        line.split("\t")[1] for line in text.splitlines() if line and not line.startswith("#")
    )


def security_properties() -> frozenset[str]:
    from kafkaboot.security.names import SECURITY_PROPERTIES

    return SECURITY_PROPERTIES


def _ignored(key: str) -> bool:
    if key in SUPPORTED_PROPERTIES or key in KAFKABOOT_HANDLED:
        return False
    if key in security_properties():
        return False
    return key in java_client_properties() or key.startswith("spring.")


_NOT_APPLIED = {
    "spring.json.remove.type.headers": "kafkaboot never removes headers from a record it "
    "hands on (a dead letter keeps __TypeId__)",
}
"""Spring settings kafkaboot accepts by name and does not apply, with the reason."""


def ignored_properties(properties: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The keys of ``properties`` that are real Kafka (or Spring) settings with no effect
    here, each with the reason, for a warning at startup."""
    found = []
    for key in properties:
        if key in _NOT_APPLIED:
            found.append((key, _NOT_APPLIED[key]))
        elif _ignored(key):
            if key.startswith("spring."):
                reason = "a Spring setting that kafkaboot does not read"
            else:
                reason = (
                    _IGNORED_REASONS.get(key) or "the Java client's; aiokafka has no equivalent"
                )
            found.append((key, reason))
    return found


def unsupported_property_message(key: str) -> str:
    """Explain that ``key`` cannot be passed to aiokafka, and suggest near names."""
    known = sorted([*SUPPORTED_PROPERTIES, *KAFKABOOT_HANDLED, *security_properties()])
    close = difflib.get_close_matches(
        key, sorted({*known, *java_client_properties()}), n=3, cutoff=0.75
    )
    suggestion = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"unknown property: not a setting of the Kafka clients.{suggestion} "
        f"kafkaboot honours: {', '.join(known)}"
    )


class PropertyProblems(ValueError):
    """Raised by :func:`validate_properties`; ``problems`` holds ``(key, message)`` pairs so
    each bad key can be reported at its own line."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))


def validate_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """Check that every raw property is supported and its value converts.

    Raises:
        PropertyProblems: naming every bad key and what is wrong with it.
    """
    problems: list[tuple[str, str]] = []
    for key, value in properties.items():
        mapping = SUPPORTED_PROPERTIES.get(key)
        try:
            if mapping is not None:
                mapping.convert(value)
            elif key == "sasl.jaas.config":
                from kafkaboot.security.jaas import parse_jaas

                parse_jaas(str(value))
            elif key in _SECURITY_VALUES:
                _SECURITY_VALUES[key](value)
            elif not (key in KAFKABOOT_HANDLED or key in security_properties() or _ignored(key)):
                problems.append((key, unsupported_property_message(key)))
        except (TypeError, ValueError) as exc:
            problems.append((key, f"invalid value {masked(key, value)}: {exc}"))
    if problems:
        raise PropertyProblems(problems)
    return properties


def map_properties(properties: Mapping[str, Any], client: ClientKind) -> dict[str, Any]:
    """Turn validated raw properties into aiokafka keyword arguments for one kind of client.

    Properties that belong to another kind of client (``linger.ms`` for a consumer) are
    skipped, as the Java client ignores them too; kafkaboot-handled, security and ignored
    keys are skipped here.
    """
    kwargs: dict[str, Any] = {}
    for key, value in properties.items():
        mapping = SUPPORTED_PROPERTIES.get(key)
        if mapping is not None and client in mapping.clients:
            kwargs[mapping.kwarg] = mapping.convert(value)
    return kwargs
