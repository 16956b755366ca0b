"""kafka.listeners.<id>: precedence, environment, validation and provenance, no broker."""

import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition

from kafkaboot import Acknowledgment, ListenerRegistry, load_settings
from kafkaboot.config.kafka import SeekProperties
from kafkaboot.errors import ConfigurationError, ListenerDefinitionError
from kafkaboot.listener.rebalance import initial_seek_requests


def registry(yaml_text="", environ=None, tmp_path=None):
    settings_kwargs = {"environ": environ or {}}
    if yaml_text:
        path = tmp_path / "application.yml"
        path.write_text(textwrap.dedent(yaml_text))
        settings_kwargs["config"] = path
    return ListenerRegistry(load_settings(**settings_kwargs), environ={})


async def handler(value: str) -> None: ...


async def acking(value: str, ack: Acknowledgment) -> None: ...


def test_yaml_beats_the_decorator_which_beats_kafka_listener_which_beats_defaults(tmp_path):
    r = registry(
        """
        kafka:
          listener:
            concurrency: 3
            ack-mode: record
          listeners:
            billing:
              concurrency: 4
              max-poll-records: 50
        """,
        tmp_path=tmp_path,
    )
    r.listener("orders", group_id="g", id="billing", concurrency=2, ack_count=7)(handler)
    r.listener("orders", group_id="g2", id="audit")(handler)
    billing, audit = r.get("billing"), r.get("audit")
    assert billing.settings.concurrency == 4  # yaml > decorator
    assert billing.settings.ack_count == 7  # decorator > defaults
    assert billing.settings.consumer_kwargs["max_poll_records"] == 50
    assert audit.settings.concurrency == 3  # kafka.listener.* > defaults
    assert audit.settings.ack_mode.value == "record"
    r.check_overrides()
    [described] = [d for d in r.describe() if d["id"] == "billing"]
    found = described["settings"]
    assert found["concurrency"]["from"].startswith("kafka.listeners.billing (")
    assert "application.yml:" in found["concurrency"]["from"]
    assert found["ack-count"]["from"] == "decorator"
    assert found["ack-mode"]["from"].startswith("kafka.listener.ack-mode (")
    assert found["auto-startup"]["from"] == "default"


def test_environment_variables_set_a_listeners_keys():
    r = registry(environ={"KAFKA_LISTENERS_BILLING_CONCURRENCY": "4"})
    r.listener("orders", group_id="g", id="billing")(handler)
    assert r.get("billing").settings.concurrency == 4


def test_yaml_can_replace_topics_group_and_ack_mode(tmp_path):
    r = registry(
        """
        kafka:
          listeners:
            billing:
              topics: a, b
              group-id: other
              ack-mode: manual
        """,
        tmp_path=tmp_path,
    )
    r.listener("orders", group_id="g", id="billing")(acking)
    container = r.get("billing")
    assert container.endpoint.topics == ("a", "b")
    assert container.settings.group_id == "other"
    assert container.settings.ack_mode.is_manual


def test_an_unknown_id_names_the_known_ones(tmp_path):
    r = registry("kafka:\n  listeners:\n    biling:\n      concurrency: 2\n", tmp_path=tmp_path)
    r.listener("orders", group_id="g", id="billing")(handler)
    with pytest.raises(ListenerDefinitionError, match="did you mean 'billing'") as error:
        r.check_overrides()
    assert "known ids: billing" in str(error.value)


def test_manual_ack_from_yaml_on_a_handler_without_acknowledgment(tmp_path):
    r = registry("kafka:\n  listeners:\n    billing:\n      ack-mode: manual\n", tmp_path=tmp_path)
    with pytest.raises(ListenerDefinitionError, match="takes no Acknowledgment") as error:
        r.listener("orders", group_id="g", id="billing")(handler)
    assert "kafka.listeners.billing.ack-mode at " in str(error.value)
    assert "application.yml:4" in str(error.value)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no-colon", "is not an import path"),
        ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
        ("tests.integration.services.probes:Missing", "has no 'Missing'"),
        ("tests.integration.services.probes:NOT_A_LISTENER", "which is not a rebalance listener"),
        ("tests.integration.services.probes:SkipEverything", "which is not a rebalance listener"),
    ],
)
def test_bad_rebalance_listener_paths(tmp_path, path, message):
    r = registry(
        f"kafka:\n  listeners:\n    billing:\n      rebalance-listener: '{path}'\n",
        tmp_path=tmp_path,
    )
    with pytest.raises(ListenerDefinitionError, match=message) as error:
        r.listener("orders", group_id="g", id="billing")(handler)
    assert "kafka.listeners.billing.rebalance-listener" in str(error.value)


def test_import_paths_give_instances_classes_and_factories(tmp_path):
    from tests.integration.services import probes

    r = registry(
        """
        kafka:
          listeners:
            a:
              rebalance-listener: tests.integration.services.probes:RecordingRebalance
              error-handler: tests.integration.services.probes:SkipEverything
            b:
              rebalance-listener: tests.integration.services.probes:make_rebalance_listener
        """,
        tmp_path=tmp_path,
    )
    r.listener("orders", group_id="g", id="a")(handler)
    r.listener("orders", group_id="g", id="b")(handler)
    a, b = r.get("a"), r.get("b")
    assert isinstance(a.rebalance_listener, probes.RecordingRebalance)
    assert isinstance(a.error_handler, probes.SkipEverything)
    assert isinstance(b.rebalance_listener, probes.RecordingRebalance)


@pytest.mark.parametrize(
    ("seek", "message"),
    [
        ({"to": "timestamp"}, "needs timestamp"),
        ({"to": "timestamp", "timestamp": "2026-01-01T00:00:00"}, "needs a zone"),
        ({"to": "offset"}, "needs offsets"),
        ({"to": "sideways"}, "Input should be"),
    ],
)
def test_impossible_seeks_are_configuration_errors(seek, message):
    with pytest.raises(ConfigurationError, match=message):
        load_settings(environ={}, overrides={"kafka": {"listeners": {"x": {"seek": seek}}}})


def test_seek_requests():
    p0, p3 = TopicPartition("t", 0), TopicPartition("t", 3)
    when = datetime(2026, 1, 1, tzinfo=UTC)

    def kinds(**seek):
        return [
            (r.kind, r.partitions, r.value)
            for r in initial_seek_requests(SeekProperties(**seek), {p0, p3})
        ]

    assert kinds(to="committed") == []
    assert kinds(to="beginning") == [("beginning", (p0, p3), 0)]
    assert kinds(to="timestamp", timestamp=when) == [
        ("timestamp", (p0, p3), int(when.timestamp() * 1000))
    ]
    [(_, _, ago_ms)] = kinds(to="timestamp", ago=timedelta(hours=2))
    expected = (datetime.now(UTC) - timedelta(hours=2)).timestamp() * 1000
    assert abs(ago_ms - expected) < 5_000
    assert kinds(to="offset", offsets={3: 77}) == [("offset", (p3,), 77)]


def test_interceptors_by_import_path_in_order(tmp_path):
    from tests.integration.services import probes

    yaml_text = """
        kafka:
          listener:
            interceptors: tests.integration.services.probes:AuditInterceptor
          listeners:
            billing:
              interceptors: [tests.integration.services.probes:AUDIT]
        """
    r = registry(yaml_text, tmp_path=tmp_path)
    first = probes.AuditInterceptor()
    r.add_interceptor(first)  # In code: before kafka.listener.interceptors.
    own = probes.AuditInterceptor()
    r.listener("orders", group_id="g", id="billing", interceptors=[own])(handler)
    r.listener("orders", group_id="g", id="other")(handler)
    everyone, configured = r.interceptors
    assert everyone is first
    assert isinstance(configured, probes.AuditInterceptor)
    assert r.get("billing").interceptors == (first, configured, own, probes.AUDIT)
    assert r.get("other").interceptors == (first, configured)


def test_template_interceptors_by_import_path(tmp_path):
    from kafkaboot.template import KafkaTemplate
    from tests.integration.services import probes

    path = tmp_path / "application.yml"
    stamp_path = "tests.integration.services.probes:StampInterceptor"
    path.write_text(f"kafka:\n  template:\n    interceptors: {stamp_path}\n")
    template = KafkaTemplate(load_settings(path, environ={}))
    [stamp] = template.interceptors
    assert isinstance(stamp, probes.StampInterceptor)


@pytest.mark.parametrize(
    ("where", "path", "message"),
    [
        (
            "listener",
            "tests.integration.services.probes:RecordingRebalance",
            "not a listener interceptor",
        ),
        ("listener", "no_such_module_xyz:Thing", "cannot import module"),
        (
            "template",
            "tests.integration.services.probes:AuditInterceptor",
            "not a producer interceptor",
        ),
    ],
)
def test_a_wrong_interceptor_path_names_the_key_and_the_fix(tmp_path, where, path, message):
    from kafkaboot.template import KafkaTemplate

    config = tmp_path / "application.yml"
    config.write_text(f"kafka:\n  {where}:\n    interceptors: ['{path}']\n")
    settings = load_settings(config, environ={})
    build = (
        (lambda: ListenerRegistry(settings, environ={}))
        if where == "listener"
        else (lambda: KafkaTemplate(settings))
    )
    with pytest.raises((ListenerDefinitionError, ConfigurationError), match=message) as error:
        build()
    assert f"kafka.{where}.interceptors" in str(error.value)
    if "not a" in message:
        assert "subclass kafkaboot." in str(error.value)  # What to write instead.
