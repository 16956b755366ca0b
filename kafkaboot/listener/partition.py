"""Per-partition bookkeeping: the one place that decides what may be committed and where a
partition is read again from.

Every way of handling records (one at a time, in batches, in transactions, with manual
acknowledgments) reports its outcomes here: "fetched from X", "handled through Y",
"delivered Z" and "acknowledged Z" (manual modes), "read again from W". The state turns them
into the offset that is safe to commit — never past a record that is not finished — and the
offset to rewind to after a failure: the first record it knows is not finished, never "the
committed offset" (a new group has none).

A state belongs to one assignment of its partition. When the partition is revoked or lost
the state is closed, and outcomes reported to a closed state change nothing: work that
outlived its ownership can never move another owner's offsets.
"""

from __future__ import annotations

import bisect
import operator
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TypeAlias

from aiokafka import ConsumerRecord, TopicPartition

__all__ = ["PartitionBook", "PartitionState", "Record"]

Record: TypeAlias = ConsumerRecord[bytes, bytes]
"""A record as fetched: raw key and value bytes."""
_offset = operator.attrgetter("offset")


class PartitionState:
    """One assigned partition of one consumer.

    ``finished`` is the offset up to which (exclusive) every record is finished: handled,
    acknowledged in the manual modes, or recovered by the error handler; ``None`` until the
    first outcome since the assignment or the last seek.
    """

    __slots__ = (
        "_acked",
        "_open",
        "_outstanding",
        "_start",
        "assigned_at",
        "closing",
        "committed",
        "epoch",
        "finished",
        "floor",
        "open",
        "paused_until",
        "position",
        "ready",
        "records_at",
        "recovered",
        "runs",
        "tp",
    )

    def __init__(self, tp: TopicPartition, committed: int | None = None) -> None:
        self.tp = tp
        self.open = True
        """False once revoked or lost: outcomes are ignored from then on."""
        self.closing = False
        """A revocation or stop is under way: handling stops after the record in hand."""
        self.ready = True
        """False while the assignment callbacks (and their seeks) run: records fetched
        meanwhile are held back and read again from where they started."""
        self.finished: int | None = None
        self._start: int | None = None
        """Where the first fetch since the assignment or the last seek began."""
        self.position: int | None = None
        """Where the consumer reads next, as far as this state knows: after the records
        handed out, or where a rewind or seek moved it."""
        self.committed = committed
        """The offset last committed by this consumer (or found committed at assignment)."""
        self.epoch = 0
        """Counts rewinds and seeks. A delivery remembers the epoch it was made in; a late
        acknowledgment of a delivery that a rewind took back is stale (the record is
        delivered again)."""
        self.floor: int | None = None
        """After a seek, where it landed: records below it that still arrive were fetched
        before the seek and are dropped (aiokafka hands out a buffered batch that ends
        exactly where a seek to the end lands)."""
        self.paused_until: float | None = None
        """Monotonic time until which a back-off keeps the partition paused."""
        self.recovered: set[int] = set()
        """Batch listeners: undecodable records already recovered, so that retries of their
        batch leave them out."""
        self._outstanding: deque[int] = deque()
        """Manual modes: records handed to the handler and not acknowledged, in order."""
        self._open: dict[int, int] = {}
        """Manual modes: each outstanding record's delivery epoch."""
        self._acked: set[int] = set()
        """Manual modes: acknowledged out of order, waiting for the records before them."""
        self.assigned_at = time.monotonic()
        self.records_at: float | None = None
        """``time.monotonic()`` when records last came (partition idle events)."""
        self.runs: deque[list[Record]] = deque()
        """The fetched runs of records handed out and not all finished, oldest first:
        where the age of the oldest unfinished record (the lag in seconds) comes from."""

    def __repr__(self) -> str:
        return (
            f"PartitionState({self.tp.topic}-{self.tp.partition}, finished={self.finished}, "
            f"committed={self.committed}, outstanding={len(self._outstanding)}, "
            f"open={self.open})"
        )

    # -- outcomes -------------------------------------------------------------------------

    def fetched(self, first_offset: int) -> None:
        """Records from ``first_offset`` on arrived; if nothing is known yet, reading resumes
        there after a failure."""
        if self._start is None:
            self._start = first_offset

    def took(self, records: list[Record]) -> None:
        """``records`` (a fetched run, in offset order) were handed out."""
        self.records_at = time.monotonic()
        self.runs.append(records)
        if len(self.runs) > 1:
            self._prune_runs()

    def _prune_runs(self) -> int | None:
        """Drop the runs that are finished; where reading would resume."""
        resume = self.resume_offset
        runs = self.runs
        if resume is not None:
            while runs and runs[0][-1].offset < resume:
                runs.popleft()
        return resume

    def oldest_unfinished(self) -> Record | None:
        """The first record handed out and not finished (``None``: none is)."""
        resume = self._prune_runs()
        if resume is None or not self.runs:
            return None
        run = self.runs[0]
        at = bisect.bisect_left(run, resume, key=_offset)
        return run[at] if at < len(run) and run[at].offset >= resume else None

    def handled(self, last_offset: int) -> None:
        """Records up to ``last_offset`` that were not delivered for acknowledgment are
        finished: a run in the automatic ack modes, or a filtered or recovered record (which
        waits, in the manual modes, for the open records before it)."""
        if not self.open:
            return
        if self._outstanding:
            self.delivered(last_offset)
            self.acknowledged(last_offset, self.epoch)
        else:
            self.finished = last_offset + 1

    def delivered(self, offset: int) -> None:
        """A record was handed to a manual-ack handler; it is open until acknowledged."""
        if self.open:
            self._outstanding.append(offset)
            self._open[offset] = self.epoch

    def returned(self, offset: int, epoch: int, acknowledged: bool) -> None:
        """A manual-ack handler returned from the record at ``offset`` (delivered in
        ``epoch``, and not reported as delivered while it ran): finished if it acknowledged
        the record (or it was recovered), else open until acknowledged. A rewind since the
        delivery took the record back: then nothing changes."""
        if not self.open or epoch != self.epoch:
            return
        if acknowledged and not self._outstanding:
            self.finished = offset + 1  # In order, the common case: no queue to keep.
            return
        self._outstanding.append(offset)
        self._open[offset] = epoch
        if acknowledged:
            self.acknowledged(offset, epoch)

    def acknowledged(self, offset: int, epoch: int) -> None:
        """A manual acknowledgment (or a recovery) of a record delivered in ``epoch``.

        Commits advance over the acknowledged prefix only, so an acknowledgment that comes
        out of order waits for the records before it.
        """
        opened = self._open
        if not self.open or opened.get(offset) != epoch:
            return  # Revoked, or taken back by a rewind: the record comes again.
        queue = self._outstanding
        if queue[0] != offset:
            self._acked.add(offset)
            return
        queue.popleft()
        del opened[offset]
        self.finished = offset + 1
        acked = self._acked
        while acked and queue and queue[0] in acked:
            head = queue.popleft()
            acked.discard(head)
            del opened[head]
            self.finished = head + 1

    def rewind(self, offset: int) -> None:
        """The partition is read again from ``offset`` (a retry, a nack, a loop error):
        records from there on are no longer finished, whatever was said of them."""
        self.epoch += 1
        self.position = offset
        queue = self._outstanding
        while queue and queue[-1] >= offset:
            head = queue.pop()
            self._acked.discard(head)
            del self._open[head]
        if queue:
            return  # Earlier records are still open; ``finished`` stays before them.
        if self.finished is None or self.finished > offset:
            self.finished = offset

    def sought(self, position: int | None = None) -> None:
        """A seek moved the position (to ``position``, when known): forget what was open;
        the next fetch says where reading resumes. Commits restart from the records
        handled after the seek."""
        self.epoch += 1
        self.runs.clear()
        self._outstanding.clear()
        self._open.clear()
        self._acked.clear()
        self.finished = None
        self._start = None
        self.floor = self.position = position

    def past_seek(self, records: list[Record]) -> list[Record]:
        """``records`` without those fetched before the last seek (see ``floor``)."""
        floor = self.floor
        if floor is None:
            return records
        if records[-1].offset < floor:
            return []
        self.floor = None
        return records if records[0].offset >= floor else [r for r in records if r.offset >= floor]

    # -- what follows from them -------------------------------------------------------------

    @property
    def resume_offset(self) -> int | None:
        """Where reading must resume so that nothing unfinished is skipped (``None``:
        nothing fetched since the assignment or the last seek)."""
        if self._outstanding:
            return self._outstanding[0]
        return self._start if self.finished is None else self.finished

    @property
    def outstanding(self) -> int:
        """Manual modes: records delivered and not acknowledged."""
        return len(self._outstanding)

    def commit_offset(self) -> int | None:
        """The offset to commit now, or ``None`` when there is nothing new to commit."""
        if not self.open:
            return None
        done = self._outstanding[0] if self._outstanding else self.finished
        if done is None or done == self.committed:
            return None
        if self.committed is None and done == self._start:
            return None  # Nothing finished yet: a commit would say nothing.
        return done

    def close(self) -> None:
        """Revoked or lost: nothing reported from now on counts."""
        self.open = False
        self.closing = True


class PartitionBook:
    """The partition states of one consumer, and the commits they allow."""

    def __init__(self) -> None:
        self._states: dict[TopicPartition, PartitionState] = {}
        self.uncommitted = 0
        """Records finished since the last commit (for ``ack-count``), as reported."""

    def __contains__(self, tp: object) -> bool:
        return tp in self._states

    def __iter__(self) -> Iterator[PartitionState]:
        return iter(tuple(self._states.values()))

    def __len__(self) -> int:
        return len(self._states)

    def get(self, tp: TopicPartition) -> PartitionState | None:
        return self._states.get(tp)

    @property
    def partitions(self) -> set[TopicPartition]:
        return set(self._states)

    def assign(self, tp: TopicPartition, committed: int | None = None) -> PartitionState:
        """A new assignment of ``tp``: a fresh state (an older one is closed)."""
        old = self._states.get(tp)
        if old is not None:
            old.close()
        state = self._states[tp] = PartitionState(tp, committed)
        return state

    def remove(self, partitions: Iterable[TopicPartition]) -> list[PartitionState]:
        """Revoked or lost partitions: their states are closed and forgotten."""
        removed = []
        for tp in partitions:
            state = self._states.pop(tp, None)
            if state is not None:
                state.close()
                removed.append(state)
        return removed

    def offsets_to_commit(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """What may be committed now, for all partitions or only ``partitions``."""
        if partitions is None:
            states: Iterable[PartitionState] = self._states.values()
        else:
            states = (s for tp in partitions if (s := self._states.get(tp)) is not None)
        offsets = {}
        for state in states:
            offset = state.commit_offset()
            if offset is not None:
                offsets[state.tp] = offset
        return offsets

    def committed(self, offsets: dict[TopicPartition, int], *, everything: bool = True) -> None:
        """``offsets`` were committed (``everything`` that could be, or only some
        partitions': then the ack-count still counts the others')."""
        for tp, offset in offsets.items():
            state = self._states.get(tp)
            if state is not None:
                state.committed = offset
        if everything:
            self.uncommitted = 0

    @property
    def has_pending(self) -> bool:
        return any(state.commit_offset() is not None for state in self._states.values())
