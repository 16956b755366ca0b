"""The central consumer's replay and rebalance logging come from its application.yml."""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from kafkaboot import load_settings
from kafkaboot.errors import ConfigurationError

CONFIG = Path(__file__).parents[2] / "sample_consumer_service" / "application.yml"


def events_listener(**environ):
    return load_settings(CONFIG, environ=environ).kafka.listeners["central-events"]


def test_by_default_the_consumer_goes_on_from_the_committed_offsets():
    listener = events_listener()
    assert listener.seek.to == "committed"
    assert listener.rebalance_listener == "sample_consumer_service.listeners:LoggingRebalance"


def test_replay_from_the_beginning_once_per_partition():
    seek = events_listener(REPLAY="beginning").seek
    assert (seek.to, seek.once) == ("beginning", True)


def test_replay_from_a_while_ago():
    seek = events_listener(REPLAY="timestamp", REPLAY_AGO="2h").seek
    assert (seek.to, seek.ago) == ("timestamp", timedelta(hours=2))


def test_a_bad_replay_names_the_key_and_the_accepted_values():
    with pytest.raises(ConfigurationError, match=r"kafka\.listeners\.central-events\.seek\.to"):
        events_listener(REPLAY="sideways")


def test_the_events_listener_gets_its_yaml_settings():
    import sample_consumer_service.listeners as service
    from kafkaboot import ListenerRegistry
    from kafkaboot.errorhandling import DeadLetterPublishingRecoverer
    from kafkaboot.template import KafkaTemplate

    settings = load_settings(CONFIG, environ={"REPLAY": "beginning"})
    # Dead letters are published with the template, as the ApplicationContainer wires it.
    registry = ListenerRegistry(settings, environ={}, template=KafkaTemplate(settings))
    registry.scan(service)
    registry.check_overrides()
    container = registry.get("central-events")
    assert isinstance(container.rebalance_listener, service.LoggingRebalance)
    assert container.initial_seek.to == "beginning"
    assert isinstance(container.error_handler.recoverer, DeadLetterPublishingRecoverer)


def test_a_bad_instance_id_header_does_not_lose_a_valid_event(monkeypatch):
    """The header only labels the statistics: an event whose ``instance-id`` is not UTF-8
    is still counted (under the escaped bytes), not dead-lettered or skipped."""
    from aiokafka import ConsumerRecord

    import sample_consumer_service.listeners as service
    from kafkaboot import Acknowledgment
    from kafkaboot.listener.binding import bind
    from sample_producer_service.models import Message

    monkeypatch.setattr(service, "stats", service.Stats())
    invoker = bind(service.on_event, name="central-events", batch=False, manual_ack=True)
    value = Message(customer_id="c-1", sequence=0).model_dump_json().encode()

    def deliver(headers):
        record = ConsumerRecord("events", 0, 0, 0, 0, b"c-1", value, None, 3, len(value), headers)
        ack = Acknowledgment()
        asyncio.run(invoker.call(record, ack, None))
        return ack.acknowledged

    assert deliver([("instance-id", b"site-\xff")])
    assert deliver([("instance-id", b"site-2")])
    assert deliver([])
    assert service.stats.per_instance == {"site-\\xff": 1, "site-2": 1, "unknown": 1}
