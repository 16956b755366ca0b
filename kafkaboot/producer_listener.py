"""Producer listeners: told about every record the template delivers or fails to deliver
(Spring's ``ProducerListener``)."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from kafkaboot.errors import KafkaSendError
from kafkaboot.records import ProducerRecord, SendResult

__all__ = ["LoggingProducerListener", "ProducerListener"]

log = logging.getLogger("kafkaboot.template")


@runtime_checkable
class ProducerListener(Protocol):
    """Told about every delivery (Spring's ``ProducerListener``); callbacks must be quick."""

    def on_success(self, record: ProducerRecord, result: SendResult) -> None: ...

    def on_error(self, record: ProducerRecord, error: KafkaSendError) -> None: ...


class LoggingProducerListener:
    """The default: logs failed deliveries with topic and key (successes are silent)."""

    def on_success(self, record: ProducerRecord, result: SendResult) -> None:
        return None

    def on_error(self, record: ProducerRecord, error: KafkaSendError) -> None:
        log.error("send to topic %s with key %r failed: %s", record.topic, record.key, error)
