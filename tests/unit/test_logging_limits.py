"""RepeatFilter: repeated warnings bounded per (logger, template), counts told, nothing else
held back; install() reaches every aiokafka logger."""

import logging

import pytest

from kafkaboot import logging_limits
from kafkaboot.logging_limits import RepeatFilter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def throttled(request):
    """A logger of its own with a 30 s RepeatFilter, a handler that keeps lines, a clock."""
    logger = logging.getLogger(f"test.limits.{request.node.name}")
    logger.propagate = False
    clock, lines = Clock(), Lines()
    logger.addHandler(lines)
    logger.addFilter(RepeatFilter(30.0, clock=clock))
    yield logger, clock, lines.lines
    logger.removeHandler(lines)
    logger.filters.clear()


def test_the_first_occurrence_is_written_and_repeats_are_held_back(throttled):
    logger, clock, lines = throttled
    for _ in range(500):
        logger.error("Unable connect to node with id %s: %s", 1, "refused")
        clock.now += 0.01
    assert lines == ["Unable connect to node with id 1: refused"]


def test_the_first_repeat_after_the_window_says_how_many_were_held_back(throttled):
    logger, clock, lines = throttled
    for _ in range(413):
        logger.error("Unable connect to node with id %s", 1)
    clock.now += 30
    logger.error("Unable connect to node with id %s", 2)
    assert lines == [
        "Unable connect to node with id 1",
        "Unable connect to node with id 2 (and 412 more like it in the last 30s)",
    ]


def test_distinct_templates_and_loggers_never_hold_each_other_back(throttled):
    logger, _, lines = throttled
    other = logging.getLogger(f"{logger.name}.child")
    other.addFilter(logger.filters[0])
    logger.error("a %s", 1)
    logger.error("b %s", 1)
    other.error("a %s", 1)
    assert lines == ["a 1", "b 1", "a 1"]
    other.filters.clear()


def test_records_below_warning_are_never_held_back(throttled):
    logger, _, lines = throttled
    logger.setLevel(logging.INFO)
    for _ in range(3):
        logger.info("joined group %s", "g")
    assert lines == ["joined group g"] * 3


def test_an_interval_of_zero_holds_nothing_back(throttled):
    logger, _, lines = throttled
    logger.filters[0].interval = 0
    for _ in range(3):
        logger.error("x")
    assert lines == ["x"] * 3


def test_pending_counts_come_out_with_the_last_record_held_back(throttled):
    """An outage that ends leaves no next record to carry the count: a stop writes it."""
    logger, clock, lines = throttled
    repeat = logger.filters[0]
    for node in range(1, 5):
        logger.error("node %s away", node)
    clock.now += 10
    [record] = repeat.pending()
    logger.handle(record)
    assert lines == ["node 1 away", "node 4 away (and 2 more like it in the last 10s)"]
    assert repeat.pending() == []


def test_install_reaches_every_aiokafka_module_logger_and_the_last_release_removes_it():
    names = logging_limits.aiokafka_logger_names()
    assert {"aiokafka", "aiokafka.conn", "aiokafka.consumer.group_coordinator"} <= set(names)
    installed = logging_limits.install(5.0)
    try:
        assert logging_limits.install(7.0) is installed  # A second application.
        assert installed.interval == 7.0
        for name in names:
            assert logging.getLogger(name).filters.count(installed) == 1
        logging_limits.release()
        assert installed in logging.getLogger("aiokafka.conn").filters  # One still runs.
    finally:
        logging_limits.release()
    for name in names:
        assert installed not in logging.getLogger(name).filters


def test_a_message_that_is_not_a_string_is_limited_by_its_type(throttled):
    logger, _, lines = throttled
    for n in range(3):
        logger.error({"unhashable": n})
    assert lines == ["{'unhashable': 0}"]


def test_release_writes_the_counts_still_held(throttled):
    logger, _, lines = throttled
    logger.filters.clear()
    installed = logging_limits.install(30.0, names=[logger.name])
    for _ in range(5):
        logger.error("fetch from %s failed", 1)
    logging_limits.release()
    assert lines[0] == "fetch from 1 failed"
    assert lines[1].startswith("fetch from 1 failed (and 3 more like it in the last ")
    assert len(lines) == 2
    assert installed not in logger.filters
