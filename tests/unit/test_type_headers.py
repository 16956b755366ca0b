"""Spring's JSON type headers on the sending side: what the template writes, and when."""

import pytest

from kafkaboot import load_settings
from kafkaboot.errors import ConfigurationError
from kafkaboot.serialization import (
    AutoSerializer,
    JsonSerializer,
    record_headers,
    serializer_for,
)
from kafkaboot.serialization.type_headers import JsonTypes, parse_type_mapping
from kafkaboot.template import KafkaTemplate
from tests.json_models import Order, OrderKey, PriorityOrder, Refund

MAPPING = "order:tests.json_models.Order, refund:tests.json_models:Refund"


def template(producer_properties=None, common_properties=None, **producer):
    kafka = {"producer": {**producer, "properties": producer_properties or {}}}
    if common_properties:
        kafka["properties"] = common_properties
    return KafkaTemplate(load_settings(environ={}, overrides={"kafka": kafka}))


def headers_of(t, value, key=None, headers=None):
    return record_headers(headers, t.key_serializer, key, t.value_serializer, value)


def test_json_serializer_writes_the_mapping_token_for_a_mapped_model():
    t = template({"spring.json.type.mapping": MAPPING}, **{"value-serializer": "json"})
    assert headers_of(t, Order(id=1)) == [("__TypeId__", b"order")]
    assert headers_of(t, Refund(id=2)) == [("__TypeId__", b"refund")]


def test_json_serializer_writes_the_qualified_name_of_an_unmapped_model():
    t = template(
        **{"value-serializer": "org.springframework.kafka.support.serializer.JsonSerializer"}
    )
    assert headers_of(t, Order(id=1)) == [("__TypeId__", b"tests.json_models.Order")]
    # A subclass is its own class, as Java's getClass() is (a mapping token is per class).
    assert headers_of(t, PriorityOrder(id=1)) == [
        ("__TypeId__", b"tests.json_models.PriorityOrder")
    ]


def test_mapping_in_common_kafka_properties_applies_to_the_producer():
    t = template(
        common_properties={"spring.json.type.mapping": MAPPING}, **{"value-serializer": "json"}
    )
    assert headers_of(t, Order(id=1)) == [("__TypeId__", b"order")]


def test_add_type_headers_false_writes_none():
    t = template({"spring.json.add.type.headers": "false"}, **{"value-serializer": "json"})
    assert headers_of(t, Order(id=1)) is None
    assert headers_of(t, Order(id=1), headers={"a": "b"}) == [("a", b"b")]


def test_dicts_lists_and_scalars_get_no_type_header():
    t = template(**{"value-serializer": "json"})
    for value in ({"id": 1}, [1, 2], "text", 3, 2.5, True):
        assert headers_of(t, value) is None, value


def test_a_mapped_builtin_gets_its_token():
    # The opt-in for a Spring consumer without a default type: name Java's map class.
    t = template(
        {"spring.json.type.mapping": "java.util.LinkedHashMap:builtins.dict"},
        **{"value-serializer": "json"},
    )
    assert headers_of(t, {"id": 1}) == [
        ("__TypeId__", b"java.util.LinkedHashMap"),
        ("__ContentTypeId__", b"java.lang.Object"),
        ("__KeyTypeId__", b"java.lang.Object"),
    ]


def test_a_type_header_the_caller_set_is_kept():
    t = template(**{"value-serializer": "json"})
    given = {"__TypeId__": "com.example.Order", "trace": "t"}
    assert headers_of(t, Order(id=1), headers=given) == [
        ("__TypeId__", b"com.example.Order"),
        ("trace", b"t"),
    ]
    pairs = [("__TypeId__", b"x")]
    assert headers_of(t, Order(id=1), headers=pairs) == [("__TypeId__", b"x")]


def test_a_json_key_gets_the_key_type_header():
    t = template(
        {"spring.json.type.mapping": "key:tests.json_models.OrderKey"},
        **{"value-serializer": "json", "key-serializer": "json"},
    )
    assert headers_of(t, Order(id=1), key=OrderKey("eu", 1)) == [
        ("__TypeId__", b"tests.json_models.Order"),
        ("__Key_TypeId__", b"key"),
    ]


def test_the_default_auto_serializer_writes_type_headers_only_when_asked():
    assert headers_of(template(), Order(id=1)) is None
    t = template({"spring.json.add.type.headers": True})
    assert isinstance(t.value_serializer, AutoSerializer)
    assert headers_of(t, Order(id=1)) == [("__TypeId__", b"tests.json_models.Order")]
    assert headers_of(t, "text") is None


def test_a_serializer_object_is_used_as_given():
    # As in Spring: properties configure only the serializers built from names.
    t = KafkaTemplate(
        load_settings(
            environ={},
            overrides={
                "kafka": {"producer": {"properties": {"spring.json.add.type.headers": False}}}
            },
        ),
        value_serializer=JsonSerializer(),
    )
    assert headers_of(t, Order(id=1)) == [("__TypeId__", b"tests.json_models.Order")]


def test_a_per_send_serializer_name_is_configured_too():
    t = template({"spring.json.type.mapping": MAPPING})
    serializer = serializer_for("json", t._properties)
    assert record_headers(None, None, None, serializer, Order(id=1)) == [("__TypeId__", b"order")]


@pytest.mark.parametrize(
    "mapping",
    ["order", "order:", ":tests.json_models.Order", "order:tests.json_models.Order,refund"],
)
def test_a_malformed_mapping_says_how_to_write_it(mapping):
    with pytest.raises(ValueError, match=r"token:python\.module\.Model"):
        parse_type_mapping(mapping)


def test_a_mapping_to_a_java_class_is_skipped_with_a_warning(caplog):
    # A Spring file's mapping names Java classes: it must still load, unchanged.
    template(
        {"spring.json.type.mapping": "order:com.example.Order"}, **{"value-serializer": "json"}
    )
    assert "'com.example.Order' is a Java class, not a Python model; it is ignored" in caplog.text


def test_a_mapping_to_a_missing_python_model_says_to_fix_it():
    with pytest.raises(ConfigurationError, match=r"cannot import 'tests.json_models.Ordr'"):
        template(
            {"spring.json.type.mapping": "order:tests.json_models.Ordr"},
            **{"value-serializer": "json"},
        )


def test_a_non_boolean_flag_is_refused():
    with pytest.raises(ConfigurationError, match=r"spring\.json\.add\.type\.headers: 'yes'"):
        template({"spring.json.add.type.headers": "yes"}, **{"value-serializer": "json"})


def test_default_type_by_import_path_or_token():
    by_path = JsonTypes.from_properties(
        {"spring.json.value.default.type": "tests.json_models:Refund"}, is_key=False
    )
    assert by_path.default_type is Refund
    by_token = JsonTypes.from_properties(
        {"spring.json.type.mapping": MAPPING, "spring.json.key.default.type": "order"}, is_key=True
    )
    assert (by_token.default_type, by_token.header) == (Order, "__Key_TypeId__")
