"""Components named by import path in kafka.listeners.<id> (tests)."""

from typing import ClassVar

from kafkaboot import ErrorAction, ProducerInterceptor, RebalanceListener, RecordInterceptor


class RecordingRebalance(RebalanceListener):
    events: ClassVar[list[tuple[str, int]]] = []  # Shared: each registry has an instance.

    def on_partitions_assigned(self, partitions, consumer):
        self.events.append(("assigned", len(partitions)))

    def on_partitions_revoked(self, partitions, consumer):
        self.events.append(("revoked", len(partitions)))


class SkipEverything:
    def handle(self, failure):
        return ErrorAction.recovered()


def make_rebalance_listener():
    return RecordingRebalance()


NOT_A_LISTENER = 42


class AuditInterceptor(RecordInterceptor):
    """For the import-path tests: a record interceptor named in application.yml."""


class StampInterceptor(ProducerInterceptor):
    """For the import-path tests: a producer interceptor named in application.yml."""


AUDIT = AuditInterceptor()
