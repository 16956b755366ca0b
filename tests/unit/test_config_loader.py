"""Loading application.yml: Spring shape, profiles, placeholders, environment, errors."""

import textwrap
from datetime import timedelta

import pytest

from kafkaboot.config import load_settings
from kafkaboot.errors import ConfigurationError

SPRING_EXAMPLE = """\
server:
  port: 9995
spring:
  kafka:
    bootstrap-servers: 127.0.0.1:9092,127.0.0.1:9093
    producer:
      key-serializer: org.apache.kafka.common.serialization.StringSerializer
      value-serializer: org.apache.kafka.common.serialization.StringSerializer
    consumer:
      group-id: orders
      auto-offset-reset: earliest
    template:
      default-topic: orders
"""


@pytest.fixture
def write(tmp_path):
    def write(name, text):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def load(path=None, **kwargs):
    kwargs.setdefault("environ", {})
    return load_settings(path, **kwargs)


def problems_of(excinfo):
    return [str(p) for p in excinfo.value.problems]


def test_spring_boot_application_yml_loads_unchanged(write):
    settings = load(write("application.yml", SPRING_EXAMPLE))

    assert settings.server.port == 9995
    assert settings.kafka.bootstrap_servers == ["127.0.0.1:9092", "127.0.0.1:9093"]
    assert settings.kafka.consumer.group_id == "orders"
    assert settings.kafka.consumer.auto_offset_reset == "earliest"
    assert settings.kafka.template.default_topic == "orders"
    assert settings.kafka.producer.value_serializer.endswith("StringSerializer")


def test_kafka_root_key_and_spring_alias_mean_the_same(write):
    spring = load(write("a.yml", SPRING_EXAMPLE))
    plain = load(write("b.yml", SPRING_EXAMPLE.replace("spring:\n  kafka:\n", "kafka:\n")))
    assert plain.kafka == spring.kafka


def test_kafka_key_wins_over_spring_kafka_key_by_key(write):
    path = write(
        "application.yml",
        """\
        spring:
          kafka:
            bootstrap-servers: spring:9092
            consumer: {group-id: from-spring, max-poll-records: 7}
        kafka:
          consumer: {group-id: from-kafka}
        """,
    )
    settings = load(path)
    assert settings.kafka.bootstrap_servers == ["spring:9092"]
    assert settings.kafka.consumer.group_id == "from-kafka"
    assert settings.kafka.consumer.max_poll_records == 7


def test_relaxed_key_spellings_bind_to_one_field(write):
    path = write(
        "application.yml",
        """\
        kafka:
          bootstrapServers: a:1
          consumer:
            group_id: g
            maxPollRecords: 10
            AUTO-OFFSET-RESET: earliest
        """,
    )
    settings = load(path)
    assert settings.kafka.bootstrap_servers == ["a:1"]
    assert settings.kafka.consumer.group_id == "g"
    assert settings.kafka.consumer.max_poll_records == 10
    assert settings.kafka.consumer.auto_offset_reset == "earliest"


def test_defaults_follow_spring_boot_and_kafka():
    settings = load()
    kafka = settings.kafka
    assert kafka.bootstrap_servers == ["localhost:9092"]
    assert kafka.consumer.enable_auto_commit is False
    assert kafka.consumer.max_poll_records == 500
    assert kafka.consumer.session_timeout == timedelta(seconds=45)
    assert kafka.producer.acks == "all"
    assert kafka.producer.enable_idempotence is True
    assert kafka.listener.ack_mode == "batch"
    assert kafka.listener.poll_timeout == timedelta(seconds=5)
    assert kafka.admin.auto_create is True
    assert settings.server.port == 8080


def test_bootstrap_servers_accepts_a_yaml_list(write):
    path = write("application.yml", "kafka:\n  bootstrap-servers: [a:1, b:2]\n")
    assert load(path).kafka.bootstrap_servers == ["a:1", "b:2"]


def test_user_sections_are_left_alone(write):
    path = write(
        "application.yml",
        """\
        spring:
          application: {name: billing}
          kafka: {bootstrap-servers: k:1}
        billing:
          anything-goes: [1, 2]
          Mixed_Case: yes
        """,
    )
    settings = load(path)
    assert settings.model_extra == {
        "spring": {"application": {"name": "billing"}},
        "billing": {"anything-goes": [1, 2], "Mixed_Case": True},
    }


# -- where the file comes from ------------------------------------------------------------


def test_application_yml_in_the_working_directory_is_found(write, tmp_path):
    write("application.yml", "server: {port: 1234}\n")
    assert load(cwd=tmp_path).server.port == 1234


def test_kafkaboot_config_variable_names_the_file(write, tmp_path):
    path = write("elsewhere.yml", "server: {port: 4321}\n")
    assert load(environ={"KAFKABOOT_CONFIG": str(path)}, cwd=tmp_path / "..").server.port == 4321


def test_explicit_file_beats_the_variable(write):
    env_file = write("env.yml", "server: {port: 1}\n")
    explicit = write("explicit.yml", "server: {port: 2}\n")
    assert load(explicit, environ={"KAFKABOOT_CONFIG": str(env_file)}).server.port == 2


def test_no_file_at_all_gives_defaults(tmp_path):
    assert load(cwd=tmp_path).files == ()


def test_missing_named_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigurationError, match=r"missing\.yml.*does not exist") as excinfo:
        load(tmp_path / "missing.yml")
    assert "--config" in str(excinfo.value)


def test_missing_file_from_variable_names_the_variable(tmp_path):
    with pytest.raises(ConfigurationError, match=r"\$KAFKABOOT_CONFIG"):
        load(environ={"KAFKABOOT_CONFIG": str(tmp_path / "nope.yml")})


# -- profiles -----------------------------------------------------------------------------


def test_profile_file_overrides_the_base_file(write):
    base = write("application.yml", "kafka: {consumer: {group-id: base, max-poll-records: 9}}\n")
    write("application-dev.yml", "kafka: {consumer: {group-id: dev}}\n")
    settings = load(base, profiles=["dev"])
    assert settings.kafka.consumer.group_id == "dev"
    assert settings.kafka.consumer.max_poll_records == 9
    assert settings.active_profiles == ["dev"]
    assert [f.rsplit("/", 1)[-1] for f in settings.files] == [
        "application.yml",
        "application-dev.yml",
    ]


def test_later_profiles_win_over_earlier_ones(write):
    base = write("application.yml", "server: {port: 1}\n")
    write("application-a.yml", "server: {port: 2}\n")
    write("application-b.yaml", "server: {port: 3}\n")
    assert load(base, profiles="a,b").server.port == 3
    assert load(base, profiles="b,a").server.port == 2


def test_multi_document_file_activates_documents_by_profile(write):
    path = write(
        "application.yml",
        """\
        kafka:
          consumer: {group-id: default}
        ---
        spring:
          config:
            activate:
              on-profile: prod
        kafka:
          consumer: {group-id: production}
        ---
        kafkaboot:
          config: {activate: {on-profile: "!prod"}}
        server: {port: 7000}
        """,
    )
    assert load(path).kafka.consumer.group_id == "default"
    assert load(path).server.port == 7000
    prod = load(path, profiles=["prod"])
    assert prod.kafka.consumer.group_id == "production"
    assert prod.server.port == 8080
    assert "spring" not in (prod.model_extra or {})


def test_profile_file_wins_over_profile_document_in_base_file(write):
    base = write(
        "application.yml",
        """\
        server: {port: 1}
        ---
        spring: {config: {activate: {on-profile: dev}}}
        server: {port: 2}
        """,
    )
    write("application-dev.yml", "server: {port: 3}\n")
    assert load(base, profiles=["dev"]).server.port == 3


@pytest.mark.parametrize(
    ("expression", "active", "expected"),
    [
        ("dev | test", ["test"], True),
        ("cloud & eu", ["cloud"], False),
        ("cloud & eu", ["eu", "cloud"], True),
        ("!prod", [], True),
        (["a", "b"], ["b"], True),
    ],
)
def test_profile_expressions(expression, active, expected):
    from kafkaboot.config.documents import matches_profiles

    assert matches_profiles(expression, active) is expected


@pytest.mark.parametrize("variable", ["KAFKABOOT_PROFILES_ACTIVE", "SPRING_PROFILES_ACTIVE"])
def test_active_profiles_from_environment(write, variable):
    base = write("application.yml", "server: {port: 1}\n")
    write("application-x.yml", "server: {port: 2}\n")
    assert load(base, environ={variable: "x"}).server.port == 2


def test_active_profiles_from_spring_profiles_active_in_file(write):
    base = write("application.yml", "spring: {profiles: {active: x}}\nserver: {port: 1}\n")
    write("application-x.yml", "server: {port: 2}\n")
    settings = load(base)
    assert settings.server.port == 2
    assert settings.active_profiles == ["x"]


def test_explicit_profiles_beat_environment(write):
    base = write("application.yml", "server: {port: 1}\n")
    write("application-x.yml", "server: {port: 2}\n")
    write("application-y.yml", "server: {port: 3}\n")
    assert load(base, profiles=["y"], environ={"KAFKABOOT_PROFILES_ACTIVE": "x"}).server.port == 3


# -- placeholders -------------------------------------------------------------------------


def test_placeholder_from_environment(write):
    path = write("application.yml", "kafka: {bootstrap-servers: '${BROKERS}'}\n")
    assert load(path, environ={"BROKERS": "x:1,y:2"}).kafka.bootstrap_servers == ["x:1", "y:2"]


def test_placeholder_default_used_when_variable_unset(write):
    path = write("application.yml", "server: {port: '${PORT:9995}'}\n")
    assert load(path).server.port == 9995
    assert load(path, environ={"PORT": "1"}).server.port == 1


def test_placeholder_inside_text_and_nested_default(write):
    path = write("application.yml", "kafka: {client-id: 'svc-${SITE:${REGION:eu}}-${N:1}'}\n")
    assert load(path).kafka.client_id == "svc-eu-1"
    assert load(path, environ={"REGION": "us"}).kafka.client_id == "svc-us-1"


def test_placeholder_may_name_another_configuration_key(write):
    path = write(
        "application.yml",
        "spring: {application: {name: billing}}\n"
        "kafka: {client-id: '${spring.application.name}-1'}\n",
    )
    assert load(path).kafka.client_id == "billing-1"


def test_missing_placeholder_without_default_is_an_error_with_line_and_fix(write):
    path = write("application.yml", "kafka:\n  consumer:\n    group-id: ${GROUP}\n")
    with pytest.raises(ConfigurationError) as excinfo:
        load(path)
    [problem] = problems_of(excinfo)
    assert f"{path}:3" in problem
    assert "kafka.consumer.group-id" in problem
    assert "${GROUP:value}" in problem


def test_circular_placeholder_is_reported_not_looped(write):
    path = write("application.yml", "a: '${b}'\nb: '${a}'\n")
    with pytest.raises(ConfigurationError, match="circular"):
        load(path)


# -- environment overrides ----------------------------------------------------------------


def test_environment_overrides_file_with_relaxed_names(write):
    path = write("application.yml", SPRING_EXAMPLE)
    settings = load(
        path,
        environ={
            "KAFKA_BOOTSTRAP_SERVERS": "env:1",
            "SPRING_KAFKA_CONSUMER_GROUP_ID": "env-group",
            "KAFKA_CONSUMER_MAX_POLL_RECORDS": "5",
            "KAFKA_LISTENER_ACK_MODE": "MANUAL_IMMEDIATE",
            "KAFKA_PRODUCER_PROPERTIES_LINGER_MS": "20",
            "SERVER_PORT": "1111",
            "KAFKA_HEAP_OPTS": "-Xmx1g",  # Kafka's own variable: not ours, ignored.
        },
    )
    assert settings.kafka.bootstrap_servers == ["env:1"]
    assert settings.kafka.consumer.group_id == "env-group"
    assert settings.kafka.consumer.max_poll_records == 5
    assert settings.kafka.listener.ack_mode == "manual_immediate"
    assert settings.kafka.producer.properties == {"linger.ms": "20"}
    assert settings.server.port == 1111
    assert settings.origins[("kafka", "consumer", "group_id")] == (
        "environment variable SPRING_KAFKA_CONSUMER_GROUP_ID"
    )


def test_precedence_file_profile_environment_explicit(write):
    base = write(
        "application.yml",
        "kafka: {client-id: file, consumer: {group-id: file}}\nserver: {port: 1, host: file}\n",
    )
    write(
        "application-p.yml",
        "kafka: {client-id: profile, consumer: {group-id: profile}}\nserver: {port: 2}\n",
    )
    settings = load(
        base,
        profiles=["p"],
        environ={"KAFKA_CONSUMER_GROUP_ID": "env", "SERVER_PORT": "3"},
        overrides={"server": {"port": 4}},
    )
    assert settings.server.host == "file"
    assert settings.kafka.client_id == "profile"
    assert settings.kafka.consumer.group_id == "env"
    assert settings.server.port == 4


def test_explicit_overrides_accept_relaxed_names():
    settings = load(overrides={"kafka": {"bootstrap-servers": "o:1", "consumer": {"groupId": "g"}}})
    assert settings.kafka.bootstrap_servers == ["o:1"]
    assert settings.kafka.consumer.group_id == "g"


# -- errors -------------------------------------------------------------------------------


def test_invalid_yaml_names_file_line_and_fix(write):
    path = write("application.yml", "kafka:\n  consumer:\n    group-id: a\n   bad: [\n")
    with pytest.raises(ConfigurationError) as excinfo:
        load(path)
    [problem] = problems_of(excinfo)
    assert f"{path}:4" in problem
    assert "invalid YAML" in problem
    assert "indentation" in problem


def test_unknown_key_suggests_the_right_one(write):
    path = write("application.yml", "kafka:\n  consumer:\n    group-idd: orders\n")
    with pytest.raises(ConfigurationError) as excinfo:
        load(path)
    [problem] = problems_of(excinfo)
    assert f"{path}:3" in problem
    assert "kafka.consumer.group-idd: unknown key" in problem
    assert "did you mean kafka.consumer.group-id?" in problem


def test_unknown_key_under_spring_kafka_points_at_the_spring_line(write):
    path = write("application.yml", "spring:\n  kafka:\n    bootstrap-server: x:1\n")
    with pytest.raises(ConfigurationError) as excinfo:
        load(path)
    [problem] = problems_of(excinfo)
    assert f"{path}:3" in problem
    # In the spelling of the file, and kafkaboot's own.
    assert "spring.kafka.bootstrap-server: unknown key" in problem
    assert "did you mean spring.kafka.bootstrap-servers (kafkaboot: kafka.bootstrap-servers)" in (
        problem
    )


def test_wrong_type_names_key_value_and_what_is_allowed(write):
    path = write("application.yml", "kafka:\n  consumer:\n    auto-offset-reset: earlest\n")
    with pytest.raises(ConfigurationError) as excinfo:
        load(path)
    [problem] = problems_of(excinfo)
    assert "kafka.consumer.auto-offset-reset" in problem
    assert "'earliest', 'latest' or 'none'" in problem
    assert "given: 'earlest'" in problem


def test_every_problem_is_reported_at_once(write):
    path = write(
        "application.yml",
        """\
        kafka:
          consumer:
            max-poll-records: lots
            session-timeout: 5 parsecs
          producer:
            acks: 2
          listener:
            ack-mode: sometimes
        server:
          port: 99999
        """,
    )
    with pytest.raises(ConfigurationError) as excinfo:
        load(path)
    keys = sorted(p.key for p in excinfo.value.problems)
    assert keys == [
        "kafka.consumer.max-poll-records",
        "kafka.consumer.session-timeout",
        "kafka.listener.ack-mode",
        "kafka.producer.acks",
        "server.port",
    ]


def test_bad_environment_value_names_the_variable(write):
    with pytest.raises(ConfigurationError) as excinfo:
        load(environ={"KAFKA_LISTENER_CONCURRENCY": "many"})
    [problem] = problems_of(excinfo)
    assert "environment variable KAFKA_LISTENER_CONCURRENCY" in problem
    assert "kafka.listener.concurrency" in problem


def test_duplicate_key_is_an_error(write):
    path = write("application.yml", "kafka:\n  client-id: a\n  client-id: b\n")
    with pytest.raises(ConfigurationError, match=r"application\.yml:3.*duplicate key 'client-id'"):
        load(path)


def test_document_that_is_not_a_mapping_is_an_error(write):
    path = write("application.yml", "- just\n- a list\n")
    with pytest.raises(ConfigurationError, match="must be a mapping"):
        load(path)


def test_secret_values_are_not_echoed_in_errors(write):
    path = write("application.yml", "kafka:\n  security:\n    sasl:\n      password: [hunter2]\n")
    with pytest.raises(ConfigurationError) as excinfo:
        load(path)
    assert "hunter2" not in str(excinfo.value)


def test_configuration_error_is_a_value_error():
    with pytest.raises(ValueError, match="invalid configuration"):
        load(overrides={"server": {"port": "x"}})


def test_topic_declarations(write):
    path = write(
        "application.yml",
        """\
        kafka:
          topics:
            - name: orders
              partitions: 6
              replication-factor: 1
              configs: {cleanup.policy: compact, retention.ms: 1000, preallocate: true}
            - name: audit
        """,
    )
    orders, audit = load(path).kafka.topics
    assert (orders.name, orders.partitions, orders.replication_factor) == ("orders", 6, 1)
    assert orders.configs == {
        "cleanup.policy": "compact",
        "retention.ms": "1000",
        "preallocate": "true",
    }
    assert (audit.partitions, audit.replication_factor) == (None, None)


def test_bad_topic_names_are_rejected(write):
    path = write("application.yml", "kafka: {topics: [{name: 'has space'}]}\n")
    with pytest.raises(ConfigurationError, match=r"kafka\.topics\[0\]\.name.*not a valid topic"):
        load(path)
