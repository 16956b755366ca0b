"""The AsyncAPI 3.0 document kafkaboot writes: valid against the official JSON Schema (for
the sample services too), and saying what the service does — channels, receive and send
operations, payload, key and header schemas, groups, dead letters."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from kafkaboot.application import KafkaBootApplication
from kafkaboot.asyncapi import asyncapi_document
from kafkaboot.asyncapi.page import render_page
from kafkaboot.config import load_settings
from kafkaboot.runner import find_application

ROOT = Path(__file__).parents[3]
SCHEMA = json.loads((ROOT / "tests" / "asyncapi_schema" / "asyncapi-3.0.0.json").read_text())


def valid(document):
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(document), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5]]
    return document


def described(module="tests.unit.asyncapi.described_service", **kafka):
    overrides = {"kafka": {"bootstrap-servers": "b1:9092,b2:9092", **kafka}}
    application = KafkaBootApplication(
        settings=load_settings(environ={}, overrides=overrides), modules=[module]
    )
    return valid(asyncapi_document(application))


def sends_to(document, channel_id):
    """The send operations on channel ``channel_id``."""
    return [
        operation
        for operation in document["operations"].values()
        if operation["action"] == "send"
        and operation["channel"]["$ref"] == f"#/channels/{channel_id}"
    ]


@pytest.mark.parametrize(
    ("target", "config"),
    [
        ("sample_consumer_service.listeners", "sample_consumer_service/application.yml"),
        ("sample_producer_service.endpoints", "sample_producer_service/application.yml"),
    ],
)
def test_the_sample_services_documents_are_valid_asyncapi_3(target, config):
    _, application = find_application(target, load_settings(ROOT / config, environ={}))
    document = valid(asyncapi_document(application))
    assert "events" in document["channels"]


def test_each_listener_receives_on_its_topics_with_its_types_and_group():
    document = described()
    receive = document["operations"]["receive-tests.unit.asyncapi.described_service.bill-orders"]
    assert receive["action"] == "receive"
    assert receive["summary"] == "Bills an order."
    assert receive["bindings"]["kafka"]["groupId"] == {"type": "string", "enum": ["billing"]}
    message = document["channels"]["orders"]["messages"]["Order"]
    assert message["payload"] == {"$ref": "#/components/schemas/Order"}
    assert message["bindings"]["kafka"]["key"] == {"type": "string"}
    assert set(message["headers"]["properties"]) == {"trace-id"}
    order = document["components"]["schemas"]["Order"]
    assert order["required"] == ["id", "item"]
    batch = document["channels"]["invoices"]["messages"]["Invoice"]
    assert batch["payload"] == {"$ref": "#/components/schemas/Invoice"}  # list[Invoice] → one
    pattern = [c for c in document["channels"].values() if "audit-.*" in c["description"]]
    assert pattern[0]["address"] is None
    assert [s["host"] for s in document["servers"].values()] == ["b1:9092", "b2:9092"]


def test_replies_declared_sends_and_dead_letters_are_send_operations():
    document = described(listener={"error-handler": {"dead-letter": {"enabled": True}}})
    sends = {k: v for k, v in document["operations"].items() if v["action"] == "send"}
    channels = {v["channel"]["$ref"].rsplit("/", 1)[1] for v in sends.values()}
    assert {"invoices", "orders", "orders-dlt"} <= channels  # @send_to, @publishes, DLT
    replies = document["channels"]["tests.unit.asyncapi.described_service.quote-replies"]
    assert replies["address"] is None  # The request's kafka_replyTopic header names it.
    declared = sends["send-take_order-orders"]
    assert declared["summary"] == "an order taken over HTTP"


def test_without_dead_letters_configured_there_is_no_dlt_channel():
    assert not [c for c in described()["channels"] if c.endswith("-dlt")]


def test_the_page_shows_every_channel_and_field_and_loads_nothing_from_elsewhere():
    document = described()
    page = render_page(document)
    for channel in document["channels"].values():
        if channel["address"]:
            assert f"<code>{channel['address']}</code>" in page
    assert "<code>item</code>" in page
    assert "<script" not in page
    assert "src=" not in page
    assert "http://" not in page
    assert "https://" not in page


def test_the_cli_writes_the_document_as_yaml_or_json(tmp_path):
    output = tmp_path / "asyncapi.yaml"
    command = [sys.executable, "-m", "kafkaboot", "asyncapi", "sample_consumer_service.listeners"]
    config = ["--config", str(ROOT / "sample_consumer_service" / "application.yml")]
    result = subprocess.run(
        [*command, *config, "--output", str(output)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    written = valid(yaml.safe_load(output.read_text()))
    as_json = subprocess.run(
        [*command, *config, "--format", "json"], cwd=ROOT, capture_output=True, text=True
    )
    assert json.loads(as_json.stdout) == written


def test_a_generators_elements_are_its_replies_and_odd_titles_stay_valid_keys():
    document = described()  # valid() checks the component keys against the schema.
    words = document["channels"]["words"]["messages"]
    [message] = words.values()
    assert message["payload"] == {"$ref": "#/components/schemas/Order_Event"}
    assert "Order_Event" in document["components"]["schemas"]


def test_a_dead_letter_destination_of_the_users_own_is_not_guessed(monkeypatch):
    from kafkaboot.errorhandling.dead_letter import DeadLetterPublishingRecoverer

    real_init = DeadLetterPublishingRecoverer.__init__

    def with_destination(self, *args, **kwargs):
        real_init(self, *args, **kwargs | {"destination": lambda record, error: "elsewhere"})

    monkeypatch.setattr(DeadLetterPublishingRecoverer, "__init__", with_destination)
    document = described(listener={"error-handler": {"dead-letter": {"enabled": True}}})
    assert not [c for c in document["channels"] if c.endswith("-dlt")]


def test_a_failed_record_is_sent_on_from_each_retry_stage_to_the_next():
    document = described("tests.unit.asyncapi.retrying_service")
    stages = ["payments-retry-0", "payments-retry-1", "payments-dlt"]
    for stage in stages:
        [send] = sends_to(document, stage)
        message = document["channels"][stage]["messages"]["Payment"]
        assert message["payload"] == {"$ref": "#/components/schemas/Payment"}
        assert send["messages"] == [{"$ref": f"#/channels/{stage}/messages/Payment"}]
    summaries = [sends_to(document, stage)[0]["summary"] for stage in stages]
    assert "on payments," in summaries[0]
    assert "payments-retry-0" in summaries[1]
    assert "payments-retry-1" in summaries[2]
    assert not sends_to(document, "payments")  # Nothing sends back to the main topic.


def test_without_a_dead_letter_topic_the_last_retry_sends_nowhere():
    document = described("tests.unit.asyncapi.retrying_service")
    assert len(sends_to(document, "refunds-retry-0")) == 1
    assert "refunds-dlt" not in document["channels"]
    assert not [c for c in document["channels"] if c.startswith("refunds-retry-1")]


def test_retry_topics_from_configuration_are_listed_too():
    document = described(retry={"topic": {"enabled": True, "attempts": 2}})
    assert len(sends_to(document, "orders-retry-0")) == 1
    assert len(sends_to(document, "orders-dlt")) == 1
    assert not [c for c in document["channels"] if c.startswith("invoices-retry")]  # A batch.
