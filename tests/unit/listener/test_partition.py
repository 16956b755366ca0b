"""PartitionState and PartitionBook: a commit never passes a record that is not finished,
and a rewind never skips one."""

from aiokafka import TopicPartition
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from kafkaboot.listener.partition import PartitionBook, PartitionState

TP = TopicPartition("t", 0)
OTHER = TopicPartition("t", 1)


def test_handled_records_commit_last_plus_one():
    state = PartitionState(TP)
    state.fetched(4)
    state.handled(5)
    assert state.commit_offset() == 6
    state.committed = 6
    assert state.commit_offset() is None


def test_manual_acks_out_of_order_commit_only_the_acknowledged_prefix():
    state = PartitionState(TP)
    state.fetched(10)
    for offset in (10, 11, 12):
        state.delivered(offset)
    state.acknowledged(12, state.epoch)
    state.acknowledged(11, state.epoch)
    assert state.commit_offset() is None  # Nothing past the unacknowledged 10.
    state.acknowledged(10, state.epoch)
    assert state.commit_offset() == 13


def test_gaps_in_offsets_do_not_block_commits():
    state = PartitionState(TP)  # Transaction markers leave gaps between record offsets.
    state.fetched(3)
    state.delivered(3)
    state.delivered(5)
    state.acknowledged(5, state.epoch)
    state.acknowledged(3, state.epoch)
    assert state.commit_offset() == 6


def test_a_new_group_rewinds_to_the_first_fetched_record():
    """Fault 1: with no committed offset, a failure reads the fetched records again from
    the first one, never from "the committed offset" (there is none)."""
    state = PartitionState(TP)
    state.fetched(0)
    state.handled(2)
    assert state.resume_offset == 3
    state.rewind(state.resume_offset)
    assert state.commit_offset() == 3


def test_nothing_handled_yet_resumes_at_the_fetch_start():
    state = PartitionState(TP, committed=None)
    state.fetched(40)
    assert state.resume_offset == 40
    assert state.commit_offset() is None  # Nothing finished: nothing to say.


def test_a_retry_of_an_acknowledged_record_is_never_committed_past():
    state = PartitionState(TP)
    state.fetched(1)
    for offset in (1, 2):
        state.delivered(offset)
        state.acknowledged(offset, state.epoch)  # The handler acknowledged, then raised.
    state.rewind(2)
    assert state.commit_offset() == 2


def test_an_acknowledgment_from_before_a_rewind_is_stale():
    state = PartitionState(TP)
    state.fetched(0)
    state.delivered(0)
    epoch = state.epoch
    state.rewind(0)  # Nacked or failed: delivered again.
    state.acknowledged(0, epoch)  # A late acknowledgment of the first delivery.
    assert state.commit_offset() is None
    state.delivered(0)
    state.acknowledged(0, state.epoch)
    assert state.commit_offset() == 1


def test_a_late_acknowledgment_counts_after_a_later_record_was_rewound():
    """Record 0 is acknowledged later from a background task; record 1 fails meanwhile and
    is retried. The late acknowledgment of 0 still counts, or the partition stalls."""
    state = PartitionState(TP)
    state.fetched(0)
    state.delivered(0)
    epoch_of_0 = state.epoch
    state.delivered(1)
    state.rewind(1)  # Record 1 failed: read again from 1.
    state.acknowledged(0, epoch_of_0)
    assert state.commit_offset() == 1
    assert state.outstanding == 0


def test_a_closed_state_ignores_outcomes_and_commits_nothing():
    book = PartitionBook()
    state = book.assign(TP)
    state.fetched(0)
    book.remove([TP])
    state.handled(9)
    assert book.offsets_to_commit() == {}
    assert state.commit_offset() is None


def test_a_new_assignment_starts_a_fresh_state():
    book = PartitionBook()
    old = book.assign(TP)
    old.fetched(0)
    old.handled(4)
    new = book.assign(TP)
    old.handled(9)  # Work that outlived its assignment.
    assert not old.open
    assert book.offsets_to_commit() == {}
    assert new.resume_offset is None


def test_offsets_for_some_partitions_leave_the_others():
    book = PartitionBook()
    for tp in (TP, OTHER):
        book.assign(tp).fetched(0)
    book.get(TP).handled(1)
    book.get(OTHER).handled(9)
    assert book.offsets_to_commit([OTHER]) == {OTHER: 10}
    book.committed({OTHER: 10})
    assert book.offsets_to_commit() == {TP: 2}


def test_a_commit_of_some_partitions_keeps_counting_the_others():
    book = PartitionBook()
    book.uncommitted = 7
    book.committed({TP: 3}, everything=False)  # Before a revocation, or after a nack.
    assert book.uncommitted == 7
    book.committed({TP: 4})
    assert book.uncommitted == 0


def test_a_filtered_record_waits_for_open_acknowledgments_before_it():
    state = PartitionState(TP)
    state.fetched(0)
    state.delivered(0)
    state.handled(1)  # Filtered out, while 0 waits for its acknowledgment.
    assert state.commit_offset() is None
    state.acknowledged(0, state.epoch)
    assert state.commit_offset() == 2


def test_a_seek_forgets_open_records_and_resumes_at_the_next_fetch():
    state = PartitionState(TP, committed=3)
    state.fetched(3)
    state.delivered(3)
    state.sought()
    assert state.resume_offset is None
    state.fetched(100)  # Sought to the end.
    assert state.commit_offset() is None  # Nothing handled there yet.
    state.handled(100)
    assert state.commit_offset() == 101


LOG = [offset for offset in range(40) if offset % 7 != 6]  # Gaps, as transaction markers leave.


class PartitionMachine(RuleBasedStateMachine):
    """One partition read by a consumer that fetches, handles (or acknowledges, in any
    order), fails, hits loop errors, commits, and loses and regains the partition in any
    interleaving. The broker's committed offset must never pass a record that no handler
    finished."""

    @initialize(manual=st.booleans())
    def start(self, manual):
        self.manual = manual
        self.book = PartitionBook()
        self.broker_committed = None
        self.finished_ever = set()
        self.acks = []  # (state, offset, epoch) handed out and not yet used.
        self._assign()

    def _assign(self):
        self.state = self.book.assign(TP, self.broker_committed)
        self.position = self.broker_committed or 0
        self.batch = []

    @precondition(lambda self: not self.batch and self.state.open)
    @rule(size=st.integers(1, 8))
    def fetch(self, size):
        records = [o for o in LOG if o >= self.position][:size]
        if records:
            self.state.fetched(records[0])
            self.batch = records
            self.position = records[-1] + 1

    @precondition(lambda self: self.batch)
    @rule()
    def handle_next(self):
        offset = self.batch.pop(0)
        if self.manual:
            self.state.delivered(offset)
            self.acks.append((self.state, offset, self.state.epoch))
        else:
            self.finished_ever.add(offset)
            self.state.handled(offset)

    @precondition(lambda self: self.acks)
    @rule(data=st.data())
    def acknowledge(self, data):
        state, offset, epoch = self.acks.pop(data.draw(st.integers(0, len(self.acks) - 1)))
        self.finished_ever.add(offset)
        state.acknowledged(offset, epoch)

    @precondition(lambda self: self.batch)
    @rule()
    def fail_next(self):
        offset = self.batch[0]
        self.state.rewind(offset)
        self._seek(offset)

    @precondition(lambda self: self.batch and self.manual)
    @rule()
    def acknowledge_then_fail(self):
        offset = self.batch[0]  # The handler acknowledged, then raised: retried, not finished.
        self.state.delivered(offset)
        self.state.acknowledged(offset, self.state.epoch)
        self.state.rewind(offset)
        self._seek(offset)

    @precondition(lambda self: self.batch)
    @rule()
    def filter_next(self):
        offset = self.batch.pop(0)
        self.finished_ever.add(offset)
        self.state.handled(offset)

    @rule()
    def loop_error(self):
        offset = self.state.resume_offset
        if offset is not None:
            self.state.rewind(offset)
            self._seek(offset)
        else:
            self.batch = []  # Nothing fetched since the assignment: the position is right.

    def _seek(self, offset):
        self.position = offset
        self.batch = []

    @rule()
    def commit(self):
        offsets = self.book.offsets_to_commit()
        if TP in offsets:
            self.broker_committed = offsets[TP]
            self.book.committed(offsets)

    @rule(commit_first=st.booleans())
    def rebalance(self, commit_first):
        if commit_first:  # A revocation commits; a lost partition does not.
            self.commit()
        self.book.remove([TP])
        self._assign()

    @invariant()
    def never_commits_past_an_unfinished_record(self):
        if self.broker_committed is not None:
            unfinished = [
                o for o in LOG if o < self.broker_committed and o not in self.finished_ever
            ]
            assert not unfinished, f"committed {self.broker_committed} past {unfinished}"

    @invariant()
    def every_acknowledgment_given_leaves_nothing_open(self):
        if not self.acks:
            assert self.state.outstanding == 0, f"{self.state} stalls with nothing left to ack"

    @invariant()
    def resumes_at_or_before_the_first_unfinished_record(self):
        resume = self.state.resume_offset
        committed = self.broker_committed or 0
        unfinished = [o for o in LOG if o >= committed and o not in self.finished_ever]
        if resume is not None and unfinished:
            assert resume <= unfinished[0], f"would resume at {resume}, past {unfinished[0]}"


TestPartitionMachine = PartitionMachine.TestCase
TestPartitionMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
