"""OffsetTracker: only a contiguous handled prefix is ever committable."""

from aiokafka import TopicPartition

from kafkaboot.listener.acks import Acknowledgment, OffsetTracker

TP = TopicPartition("t", 0)
OTHER = TopicPartition("t", 1)


def test_in_order_handling_commits_last_plus_one():
    tracker = OffsetTracker()
    tracker.done(TP, 4)
    tracker.done(TP, 5)
    assert tracker.take() == {TP: 6}
    assert tracker.take() == {}


def test_manual_acks_out_of_order_commit_only_the_acknowledged_prefix():
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.delivered(TP, offset)
    tracker.acknowledged(TP, 12)
    tracker.acknowledged(TP, 11)
    assert tracker.take() == {}  # 10 is not acknowledged: nothing after it may commit.
    tracker.acknowledged(TP, 10)
    assert tracker.take() == {TP: 13}


def test_gaps_in_offsets_do_not_block_commits():
    tracker = OffsetTracker()  # Transaction markers leave gaps between record offsets.
    tracker.delivered(TP, 3)
    tracker.delivered(TP, 5)
    tracker.acknowledged(TP, 3)
    tracker.acknowledged(TP, 5)
    assert tracker.take() == {TP: 6}


def test_rewind_forgets_outstanding_records_from_the_offset_on():
    tracker = OffsetTracker()
    for offset in (1, 2, 3):
        tracker.delivered(TP, offset)
    tracker.acknowledged(TP, 1)
    tracker.rewind(TP, 2)
    tracker.delivered(TP, 2)
    tracker.acknowledged(TP, 2)
    assert tracker.take() == {TP: 3}


def test_a_retry_of_an_acknowledged_record_is_never_committed_past():
    tracker = OffsetTracker()
    for offset in (1, 2):
        tracker.delivered(TP, offset)
        tracker.acknowledged(TP, offset)  # The handler acknowledged, then raised.
    tracker.rewind(TP, 2, retry=True)
    assert tracker.take() == {TP: 2}


def test_a_seek_back_does_not_lower_the_commit_of_handled_records():
    tracker = OffsetTracker()
    tracker.done(TP, 5)
    tracker.rewind(TP, 0)
    assert tracker.take() == {TP: 6}


def test_take_for_some_partitions_leaves_the_others():
    tracker = OffsetTracker()
    tracker.done(TP, 1)
    tracker.done(OTHER, 9)
    assert tracker.take({OTHER}) == {OTHER: 10}
    assert tracker.take() == {TP: 2}


def test_forgotten_partitions_are_never_committed():
    tracker = OffsetTracker()
    tracker.done(TP, 1)
    tracker.forget({TP})
    assert tracker.take() == {}


def test_restore_keeps_the_higher_offset():
    tracker = OffsetTracker()
    tracker.done(TP, 8)
    tracker.restore({TP: 5})
    assert tracker.take() == {TP: 9}


def test_uncommitted_counts_handled_records_until_a_commit():
    tracker = OffsetTracker()
    tracker.done_many(TP, 9, 10)
    tracker.done(OTHER, 0)
    assert tracker.uncommitted == 11
    tracker.take()
    assert tracker.uncommitted == 0


def test_acknowledgment_calls_back_once_and_nack_records_the_sleep():
    calls = []
    ack = Acknowledgment(lambda: calls.append(1))
    ack.acknowledge()
    ack.acknowledge()
    assert calls == [1]
    other = Acknowledgment()
    other.nack(0.5)
    assert other.nacked
    assert other.nack_sleep.total_seconds() == 0.5
