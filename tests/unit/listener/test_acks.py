"""Acknowledgment: what a manual-ack handler may do, and when."""

import pytest

from kafkaboot.errors import AcknowledgmentError
from kafkaboot.listener.acks import Acknowledgment


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


def test_nack_after_the_handler_returned_raises():
    ack = Acknowledgment()
    ack.handler_returned()
    with pytest.raises(AcknowledgmentError, match="after the handler returned"):
        ack.nack()
    assert not ack.nacked


def test_acknowledge_after_the_handler_returned_still_counts():
    calls = []
    ack = Acknowledgment(lambda: calls.append(1))
    ack.handler_returned()
    ack.acknowledge()
    assert calls == [1]


def test_nack_of_an_acknowledged_record_raises():
    ack = Acknowledgment()
    ack.acknowledge()
    with pytest.raises(AcknowledgmentError, match="already acknowledged"):
        ack.nack()
