"""Every key of Spring Boot 3.5's ``spring.kafka.*`` is honoured or warned about.

The list (``data/spring_boot_kafka_keys.tsv``) was read from Spring Boot's KafkaProperties and
its configuration metadata; ``data/spring-boot-all-keys.yml`` sets every one of them.
"""

from pathlib import Path

import pytest
from pydantic import BaseModel

from kafkaboot.config import KafkaBootSettings, load_settings
from kafkaboot.config.binding import canonical
from kafkaboot.config.ignored import ignored_reason
from kafkaboot.errors import ConfigurationError

DATA = Path(__file__).parent / "data"


def spring_keys():
    lines = (DATA / "spring_boot_kafka_keys.tsv").read_text().splitlines()
    return [line.split("\t")[0] for line in lines if line and not line.startswith("#")]


def field_for(key):
    """The model and field a ``spring.kafka`` key binds to, as relaxed binding finds it, and
    whether a section on the way is ignored as a whole (``streams``)."""
    model = KafkaBootSettings.model_fields["kafka"].annotation
    parts = key.removeprefix("spring.kafka.").split(".")
    whole_section_ignored = False
    for index, part in enumerate(parts):
        whole_section_ignored |= getattr(model, "ignored_reason", None) is not None
        names = {canonical(name): name for name in model.model_fields}
        name = names.get(canonical(part))
        assert name is not None, f"{key}: no field for {part!r}"
        if index == len(parts) - 1:
            return model, name, whole_section_ignored
        annotation = model.model_fields[name].annotation
        nested = [a for a in getattr(annotation, "__args__", (annotation,)) if a is not None]
        model = next(a for a in nested if isinstance(a, type) and issubclass(a, BaseModel))
    raise AssertionError(key)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    # Spring Boot refuses ssl.bundle beside store keys, and so does kafkaboot: the bundle
    # keys are loaded apart (test_a_bundle_is_resolved_into_its_stores).
    text = (DATA / "spring-boot-all-keys.yml").read_text()
    without_bundles = "\n".join(
        line for line in text.splitlines() if not line.strip().startswith("bundle:")
    )
    path = tmp_path_factory.mktemp("spring") / "application.yml"
    path.write_text(without_bundles)
    return load_settings(path, environ={})


def test_a_bundle_beside_store_keys_is_refused_naming_both(tmp_path):
    with pytest.raises(ConfigurationError) as caught:
        load_settings(DATA / "spring-boot-all-keys.yml", environ={})
    message = str(caught.value)
    assert "kafka.ssl.bundle and kafka.ssl.key-store-key" in message
    assert "exclude each other" in message
    assert "secret" not in message.lower()  # The file's passwords are not echoed.


def test_the_list_is_spring_boots_whole_kafka_section():
    keys = spring_keys()
    assert len(keys) == 167
    assert "spring.kafka.listener.observation-enabled" in keys
    assert "spring.kafka.jaas.options" in keys


def test_a_file_setting_every_key_loads(loaded):
    kafka = loaded.kafka
    assert kafka.listener.ack_mode == "manual_immediate"
    assert kafka.consumer.isolation_level == "read_committed"
    assert kafka.jaas.enabled is True


@pytest.mark.parametrize("key", spring_keys())
def test_each_key_is_honoured_or_warned_about(loaded, key):
    model, name, whole_section_ignored = field_for(key)
    notices = loaded.kafka.notices()
    spelled = key.replace("spring.kafka.", "kafka.", 1)
    warned = [
        n
        for n in notices
        if n.startswith(f"{spelled} is ignored")
        or any(n.startswith(f"{spelled[:i]}* is ignored") for i in range(len(spelled)))
    ]
    if key.endswith(".ssl.bundle") and not whole_section_ignored:
        return  # Resolved into stores: test_a_bundle_is_resolved_into_its_stores.
    if whole_section_ignored or ignored_reason(model, name):
        assert warned, f"{key} has no effect but no warning says so"
    elif name not in {"retries", "buffer_memory"}:
        assert not warned, f"{key} is honoured but warned about: {warned}"


def test_the_honoured_values_reach_the_clients(loaded):
    kafka = loaded.kafka
    assert kafka.template.transaction_id_prefix == "tx-template-"
    assert kafka.listener.client_id
    assert kafka.retry.topic.delay == kafka.retry.topic.backoff.delay


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        (
            "spring:\n  kafka:\n    ssl:\n      trust-store-locaton: x\n",
            "spring.kafka.ssl.trust-store-location",
        ),
        ("kafka:\n  ssl:\n    trust-store-locaton: x\n", "kafka.ssl.trust-store-location"),
        ("spring:\n  kafka:\n    lisener:\n      ack-mode: RECORD\n", "spring.kafka.listener"),
    ],
)
def test_a_typo_is_an_error_pointing_at_the_key_in_the_files_spelling(tmp_path, written, suggested):
    path = tmp_path / "application.yml"
    path.write_text(written)
    with pytest.raises(ConfigurationError, match=f"did you mean {suggested}"):
        load_settings(path, environ={})


def test_a_removed_spring_spelling_binds_to_its_replacement(tmp_path):
    path = tmp_path / "application.yml"
    path.write_text("spring:\n  kafka:\n    ssl:\n      truststore-location: /etc/t.jks\n")
    assert load_settings(path, environ={}).kafka.ssl.trust_store_location == "/etc/t.jks"
