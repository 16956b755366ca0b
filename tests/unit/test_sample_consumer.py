"""The central consumer's replay and rebalance logging come from its application.yml."""

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

    registry = ListenerRegistry(load_settings(CONFIG, environ={"REPLAY": "beginning"}), environ={})
    registry.scan(service)
    registry.check_overrides()
    container = registry.get("central-events")
    assert isinstance(container.rebalance_listener, service.LoggingRebalance)
    assert container.initial_seek.to == "beginning"
