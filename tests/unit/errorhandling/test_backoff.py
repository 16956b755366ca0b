"""Back-off policies: the waits they give and when they give up."""

from datetime import timedelta

import pytest

from kafkaboot import ExponentialBackOff, FixedBackOff
from kafkaboot.config import load_settings
from kafkaboot.errorhandling.configured import backoff_from, error_handler_from
from kafkaboot.errors import ConfigurationError


def waits(backoff, failures):
    return [backoff.delay(n) for n in range(1, failures + 1)]


def test_fixed_backoff_counts_deliveries_including_the_first():
    backoff = FixedBackOff(0.5, max_attempts=3)
    assert waits(backoff, 3) == [timedelta(seconds=0.5), timedelta(seconds=0.5), None]


def test_fixed_backoff_without_limit_never_gives_up():
    assert FixedBackOff(timedelta(seconds=1), max_attempts=None).delay(10_000) == timedelta(
        seconds=1
    )


def test_exponential_backoff_grows_to_its_cap_then_gives_up():
    backoff = ExponentialBackOff(initial=1, multiplier=3, max_interval=5, max_attempts=5)
    assert [w.total_seconds() for w in waits(backoff, 4)] == [1, 3, 5, 5]
    assert backoff.delay(5) is None


def test_jitter_stays_within_its_fraction():
    backoff = ExponentialBackOff(initial=2, multiplier=1, max_attempts=None, jitter=0.25)
    seen = {backoff.delay(1).total_seconds() for _ in range(200)}
    assert all(1.5 <= s <= 2.5 for s in seen)
    assert len(seen) > 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FixedBackOff(1, max_attempts=0), "at least 1"),
        (lambda: FixedBackOff(-1), "negative"),
        (lambda: ExponentialBackOff(multiplier=0.5), "multiplier"),
        (lambda: ExponentialBackOff(jitter=1.5), "jitter"),
    ],
)
def test_impossible_backoffs_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def settings(**handler):
    return load_settings(
        environ={}, overrides={"kafka": {"listener": {"error-handler": handler}}}
    ).kafka.listener.error_handler


def test_yaml_backoff_is_fixed_with_multiplier_one_and_exponential_otherwise():
    fixed = backoff_from(settings(backoff={"initial": "200ms", "max-attempts": 4}).backoff)
    assert fixed == FixedBackOff(timedelta(milliseconds=200), max_attempts=4)
    grows = backoff_from(
        settings(backoff={"initial": "1s", "multiplier": 2, "max-interval": "3s"}).backoff
    )
    assert [w.total_seconds() for w in waits(grows, 3)] == [1, 2, 3]


def test_the_default_handler_from_yaml_is_springs_ten_deliveries():
    handler = error_handler_from(settings(), template=None)
    assert handler.backoff == FixedBackOff(0, max_attempts=10)


def test_dead_letters_without_a_template_are_a_configuration_error():
    with pytest.raises(ConfigurationError, match=r"dead-letter\.enabled is true") as error:
        error_handler_from(settings(**{"dead-letter": {"enabled": True}}), template=None)
    assert "template" in error.value.problems[0].hint


def test_a_multiplier_below_one_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="multiplier"):
        settings(backoff={"multiplier": 0.5})


def test_exponential_backoff_without_limit_does_not_overflow():
    backoff = ExponentialBackOff(initial=1, multiplier=10, max_interval=60, max_attempts=None)
    assert backoff.delay(5_000) == timedelta(seconds=60)
