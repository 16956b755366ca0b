from datetime import timedelta

import pytest

from kafkaboot.config.types import parse_data_size, parse_duration, to_ms


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("500ms", 500),
        ("5s", 5_000),
        ("1m", 60_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("1.5s", 1_500),
        ("PT5S", 5_000),
        ("PT1M30S", 90_000),
        ("P1DT1H", 90_000_000),
        ("250", 250),
        (250, 250),
        (" 10 S ", 10_000),
    ],
)
def test_duration_forms_spring_boot_accepts(text, millis):
    assert to_ms(parse_duration(text)) == millis


def test_duration_passes_timedelta_through():
    assert parse_duration(timedelta(seconds=3)) == timedelta(seconds=3)


@pytest.mark.parametrize("bad", ["5 parsecs", "PT", "", "fast", True, None, [1]])
def test_duration_rejects_nonsense_with_the_accepted_forms(bad):
    with pytest.raises(ValueError, match="500ms, 5s, 1m"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [("16384", 16384), (16384, 16384), ("16KB", 16384), ("1MB", 1048576), ("2gb", 2 * 1024**3)],
)
def test_data_size_uses_binary_units_like_spring(text, size):
    assert parse_data_size(text) == size


@pytest.mark.parametrize("bad", ["16 KiB", "-1", "big", 1.5, True])
def test_data_size_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="16KB"):
        parse_data_size(bad)


@pytest.mark.parametrize("value", ["0s", "-1s"])
def test_an_unavailable_timeout_of_zero_or_less_names_the_key(value):
    from kafkaboot import load_settings
    from kafkaboot.errors import ConfigurationError

    with pytest.raises(
        ConfigurationError, match=r"kafka\.template\.unavailable-timeout.*more than 0"
    ):
        load_settings(environ={}, overrides={"kafka": {"template": {"unavailable-timeout": value}}})
