"""The counting central consumer (no database): its replay and rebalance logging come from
its application.yml, and its in-memory statistics."""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from kafkaboot import load_settings
from kafkaboot.errors import ConfigurationError

CONFIG = Path(__file__).parents[2] / "sample_counting_consumer" / "application.yml"


def events_listener(**environ):
    return load_settings(CONFIG, environ=environ).kafka.listeners["central-events"]


def test_by_default_the_consumer_goes_on_from_the_committed_offsets():
    listener = events_listener()
    assert listener.seek.to == "committed"
    assert listener.rebalance_listener == "sample_counting_consumer.listeners:LoggingRebalance"


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
    import sample_counting_consumer.listeners as service
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

    import sample_counting_consumer.listeners as service
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


def test_stats_memory_does_not_grow_with_the_records_handled(monkeypatch):
    """A long-running central consumer keeps a fixed-size latency window and, per
    customer, only the sequence numbers above its contiguous prefix."""
    import sample_counting_consumer.listeners as service
    from sample_producer_service.models import Message

    stats = service.Stats()
    for sequence in range(50_000):
        stats.add(Message(customer_id=f"c-{sequence % 5}", sequence=sequence // 5), "site")
    assert len(stats.latencies_ms) <= service.LATENCY_WINDOW
    assert sum(len(c.above) for c in stats.customers.values()) == 0
    view = stats.as_dict()
    assert (view["received"], view["unique"], view["duplicates"], view["gaps"]) == (
        50_000,
        50_000,
        0,
        0,
    )


def test_stats_count_gaps_and_duplicates_whatever_the_arrival_order():
    import sample_counting_consumer.listeners as service
    from sample_producer_service.models import Message

    stats = service.Stats()
    for sequence in [0, 2, 5, 1, 2, 0, 4]:
        stats.add(Message(customer_id="c", sequence=sequence), "site")
    view = stats.as_dict()
    # Seen 0, 1, 2, 4, 5 (3 missing); 2 and 0 came twice.
    assert (view["unique"], view["duplicates"], view["gaps"]) == (5, 2, 1)
    assert stats.customers["c"].above == {4, 5}
    stats.add(Message(customer_id="c", sequence=3), "site")
    assert (stats.as_dict()["gaps"], stats.customers["c"].above) == (0, set())


def test_records_seen_by_several_processes_are_counted_once_by_id():
    import sample_counting_consumer.listeners as service
    from sample_counting_consumer.sequences import unique_across
    from sample_producer_service.models import Message

    first, second = service.Stats(), service.Stats()
    for sequence in [0, 1, 2, 3, 7]:  # Then the partition moved to the other process...
        first.add(Message(customer_id="c", sequence=sequence), "site")
    for sequence in [2, 3, 4, 5, 6, 7]:  # ...which got 2, 3 and 7 again.
        second.add(Message(customer_id="c", sequence=sequence), "site")
    second.add(Message(customer_id="d", sequence=0), "site")
    views = [{c: s.as_dict() for c, s in stats.customers.items()} for stats in (first, second)]
    assert unique_across(views) == 8 + 1  # c: 0-7; d: 0.
    assert first.received + second.received - unique_across(views) == 3  # Duplicates.


def test_stats_count_a_customers_new_event_handled_after_a_later_offset_as_out_of_order():
    import sample_counting_consumer.listeners as service
    from sample_producer_service.models import Message

    stats = service.Stats()
    stats.add(Message(customer_id="c", sequence=0), "site", partition=3, offset=10)
    stats.add(Message(customer_id="d", sequence=0), "site", partition=3, offset=9)  # Other key.
    stats.add(Message(customer_id="c", sequence=1), "site", partition=3, offset=12)
    stats.add(Message(customer_id="c", sequence=0), "site", partition=3, offset=10)  # Again.
    assert stats.as_dict()["out_of_order"] == 0
    stats.add(Message(customer_id="c", sequence=2), "site", partition=3, offset=11)
    assert stats.as_dict()["out_of_order"] == 1


def test_the_journal_records_every_handled_event_durably(tmp_path, monkeypatch):
    """With ``EVENTS_JOURNAL`` set, each handled event is written (one line, straight to
    the kernel) before it is acknowledged, so a SIGKILL cannot lose the evidence."""
    from aiokafka import ConsumerRecord

    import sample_counting_consumer.listeners as service
    from kafkaboot import Acknowledgment
    from kafkaboot.listener.binding import bind
    from sample_producer_service.models import Message

    journal = service.Journal(tmp_path / "handled.log")
    monkeypatch.setattr(service, "journal", journal)
    monkeypatch.setattr(service, "stats", service.Stats())
    invoker = bind(service.on_event, name="central-events", batch=False, manual_ack=True)
    for offset, sequence in enumerate([7, 8]):
        value = Message(customer_id="c-1", sequence=sequence).model_dump_json().encode()
        record = ConsumerRecord("events", 3, offset, 0, 0, b"c-1", value, None, 3, len(value), [])
        asyncio.run(invoker.call(record, Acknowledgment(), None))
    lines = (tmp_path / "handled.log").read_text().splitlines()
    assert [line.split()[:4] for line in lines] == [["c-1", "7", "3", "0"], ["c-1", "8", "3", "1"]]


def test_sites_silent_longer_than_the_limit_are_listed():
    from sample_counting_consumer.listeners import Stats

    stats = Stats()
    stats.last_seen = {"site-1": 1000.0, "site-2": 1290.0, "site-3": 1100.0}
    assert stats.silent(after=150.0, now=1300.0) == {"site-1": 300.0, "site-3": 200.0}
    assert stats.silent(after=500.0, now=1300.0) == {}
