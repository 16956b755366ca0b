"""Settings → aiokafka keyword arguments, and raw Java client properties."""

import inspect

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from kafkaboot.config import KafkaProperties, load_settings
from kafkaboot.config.properties import SUPPORTED_PROPERTIES
from kafkaboot.errors import ConfigurationError

CLIENTS = {"producer": AIOKafkaProducer, "consumer": AIOKafkaConsumer, "admin": AIOKafkaAdminClient}


def accepted(client):
    return set(inspect.signature(client.__init__).parameters)


@pytest.mark.parametrize(("key", "mapping"), SUPPORTED_PROPERTIES.items())
def test_every_supported_property_is_a_real_aiokafka_argument(key, mapping):
    for kind in mapping.clients:
        assert mapping.kwarg in accepted(CLIENTS[kind]), (key, kind)


def full_kafka():
    return KafkaProperties.model_validate(
        {
            "bootstrap_servers": "a:1,b:2",
            "client_id": "svc",
            "properties": {"request.timeout.ms": 1000, "linger.ms": 1},
            "producer": {
                "acks": "1",
                "batch_size": "32KB",
                "linger": "20ms",
                "compression_type": "zstd",
                "properties": {"max.request.size": "2000000"},
            },
            "consumer": {
                "group_id": "g",
                "auto_offset_reset": "earliest",
                "auto_commit_interval": "1s",
                "fetch_min_size": "1KB",
                "fetch_max_wait": "100ms",
                "isolation_level": "read_committed",
                "properties": {
                    "partition.assignment.strategy": (
                        "org.apache.kafka.clients.consumer.RoundRobinAssignor"
                    ),
                    "max.partition.fetch.bytes": 65536,
                },
            },
        }
    )


@pytest.mark.parametrize("kind", ["producer", "consumer", "admin"])
def test_generated_kwargs_are_accepted_by_aiokafka(kind):
    kwargs = getattr(full_kafka(), f"{kind}_kwargs")()
    assert set(kwargs) <= accepted(CLIENTS[kind])


def test_producer_kwargs_translate_spring_units():
    kwargs = full_kafka().producer_kwargs()
    assert kwargs["bootstrap_servers"] == "a:1,b:2"
    assert kwargs["acks"] == 1
    assert kwargs["max_batch_size"] == 32 * 1024
    assert kwargs["linger_ms"] == 20  # The producer's typed value beats common properties.
    assert kwargs["compression_type"] == "zstd"
    assert kwargs["max_request_size"] == 2_000_000
    assert kwargs["request_timeout_ms"] == 1000
    assert kwargs["enable_idempotence"] is True


def test_consumer_kwargs_translate_spring_units():
    kwargs = full_kafka().consumer_kwargs()
    assert kwargs["group_id"] == "g"
    assert kwargs["enable_auto_commit"] is False
    assert kwargs["auto_commit_interval_ms"] == 1000
    assert kwargs["fetch_min_bytes"] == 1024
    assert kwargs["fetch_max_wait_ms"] == 100
    assert kwargs["max_partition_fetch_bytes"] == 65536
    assert kwargs["isolation_level"] == "read_committed"
    assert kwargs["partition_assignment_strategy"][0].name == "roundrobin"
    assert "linger_ms" not in kwargs  # A producer-only property is not given to a consumer.


def test_section_properties_win_over_typed_options():
    kafka = KafkaProperties.model_validate(
        {"consumer": {"group_id": "typed", "properties": {"group.id": "raw"}}}
    )
    assert kafka.consumer_kwargs()["group_id"] == "raw"


def test_admin_kwargs_use_operation_timeout():
    kafka = KafkaProperties.model_validate({"admin": {"operation_timeout": "7s"}})
    assert kafka.admin_kwargs()["request_timeout_ms"] == 7000


def test_sasl_settings_become_client_arguments():
    kafka = KafkaProperties.model_validate(
        {
            "security": {
                "protocol": "sasl_plaintext",
                "sasl": {"mechanism": "scram-sha-512", "username": "u", "password": "p"},
            }
        }
    )
    kwargs = kafka.consumer_kwargs()
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("u", "p")


def test_java_jaas_config_line_gives_credentials():
    line = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="alice" password="s3cr\\"et";'
    )
    kafka = KafkaProperties.model_validate(
        {
            "properties": {
                "sasl.jaas.config": line,
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-256",
            }
        }
    )
    kwargs = kafka.producer_kwargs()
    # As the Java client reads JAAS: the backslash escapes the quote.
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("alice", 's3cr"et')
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"


def test_missing_ssl_file_is_a_clear_error(tmp_path):
    kafka = KafkaProperties.model_validate(
        {"security": {"protocol": "SSL", "ssl": {"ca_location": tmp_path / "ca.pem"}}}
    )
    with pytest.raises(ConfigurationError, match=r"ca-location\): file .*ca\.pem.* does not exist"):
        kafka.consumer_kwargs()


def test_unsupported_property_is_an_error_listing_what_is_supported():
    with pytest.raises(ConfigurationError) as excinfo:
        load_settings(
            environ={}, overrides={"kafka": {"producer": {"properties": {"lingr.ms": 5}}}}
        )
    [problem] = excinfo.value.problems
    assert problem.key == "kafka.producer.properties.lingr.ms"
    assert "Did you mean 'linger.ms'?" in problem.message
    assert "max.partition.fetch.bytes" in problem.message


def test_property_with_unconvertible_value_is_an_error():
    with pytest.raises(ConfigurationError, match=r"linger\.ms: invalid value 'soon'"):
        load_settings(environ={}, overrides={"kafka": {"properties": {"linger.ms": "soon"}}})


def test_spring_json_and_delegate_properties_are_accepted():
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "consumer": {
                    "value-deserializer": "org.springframework.kafka.support.serializer."
                    "ErrorHandlingDeserializer",
                    "properties": {
                        "spring.deserializer.value.delegate.class": "org.springframework.kafka."
                        "support.serializer.JsonDeserializer",
                        "spring.json.trusted.packages": "*",
                    },
                }
            }
        },
    )
    assert "spring.json.trusted.packages" not in str(settings.kafka.consumer_kwargs())


def test_ignored_spring_options_are_reported_as_notices():
    kafka = KafkaProperties.model_validate({"producer": {"retries": 3, "buffer_memory": "32MB"}})
    notices = kafka.notices()
    assert any("retries is ignored" in n for n in notices)
    assert any("buffer-memory is ignored" in n for n in notices)
    assert KafkaProperties().notices() == []


def test_unknown_serializer_name_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match=r"kafka\.producer\.value-serializer.*unknown"):
        load_settings(environ={}, overrides={"kafka": {"producer": {"value-serializer": "jsn"}}})
