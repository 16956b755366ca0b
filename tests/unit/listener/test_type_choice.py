"""Spring's JSON type headers on the listening side: the header chooses the model."""

from typing import Annotated, Any

import pytest
from aiokafka import ConsumerRecord

from kafkaboot.errors import ConfigurationError, DeserializationError
from kafkaboot.listener import Key
from kafkaboot.listener.binding import bind
from kafkaboot.serialization import ErrorHandlingDeserializer, JsonDeserializer
from tests.json_models import Order, OrderKey, PriorityOrder, Refund

MAPPING = {
    "spring.json.type.mapping": "order:tests.json_models.Order,refund:tests.json_models.Refund"
}


def record(value=b'{"id": 1}', headers=(), key=b"k1"):
    return ConsumerRecord(
        topic="orders",
        partition=0,
        offset=3,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=list(headers),
    )


def decoder(handler, properties=None, **options):
    invoker = bind(
        handler, name="test", batch=False, manual_ack=False, properties=properties, **options
    )
    return lambda rec: invoker.call(rec, None, None)


def identity_union(payload: Order | Refund) -> Any:
    return payload


def test_a_union_picks_the_model_the_header_names_by_qualified_name():
    decode = decoder(identity_union)
    assert decode(record(headers=[("__TypeId__", b"tests.json_models.Refund")])) == Refund(id=1)
    assert decode(record(headers=[("__TypeId__", b"tests.json_models.Order")])) == Order(id=1)


def test_a_union_picks_the_model_the_header_names_by_mapping_token():
    decode = decoder(identity_union, MAPPING)
    assert decode(record(headers=[("__TypeId__", b"refund")])) == Refund(id=1)
    assert decode(record(headers=[("__TypeId__", b"order")])) == Order(id=1)


def test_the_last_type_header_wins():
    decode = decoder(identity_union, MAPPING)
    headers = [("__TypeId__", b"order"), ("__TypeId__", b"refund")]
    assert decode(record(headers=headers)) == Refund(id=1)


def test_an_unknown_header_for_a_union_is_a_deserialization_error_naming_it_and_the_choices():
    decode = decoder(identity_union, MAPPING)
    with pytest.raises(DeserializationError) as caught:
        decode(record(headers=[("__TypeId__", b"com.example.Invoice")]))
    message = str(caught.value)
    assert "__TypeId__='com.example.Invoice'" in message
    assert "orders-0@3" in message
    assert "Order (order or tests.json_models.Order)" in message
    assert "Refund (refund or tests.json_models.Refund)" in message
    assert caught.value.part == "value"


def test_a_header_naming_a_mapped_model_the_parameter_refuses_is_an_error():
    properties = {"spring.json.type.mapping": "shipment:tests.json_models.Shipment"}

    def on_order(order: Order) -> Order:
        return order

    decode = decoder(on_order, properties)
    with pytest.raises(DeserializationError, match="'shipment', a mapped model that this"):
        decode(record(headers=[("__TypeId__", b"shipment")]))
    # A header it does not know is some producer's own name: the declared type decides.
    assert decode(record(headers=[("__TypeId__", b"com.example.Order")])) == Order(id=1)


def test_a_mapped_subclass_of_the_declared_model_is_chosen():
    properties = {"spring.json.type.mapping": "priority:tests.json_models.PriorityOrder"}

    def on_order(order: Order) -> Order:
        return order

    decoded = decoder(on_order, properties)(
        record(value=b'{"id": 1, "priority": 5}', headers=[("__TypeId__", b"priority")])
    )
    assert decoded == PriorityOrder(id=1, priority=5)


def test_without_a_header_a_union_takes_the_default_type():
    properties = {**MAPPING, "spring.json.value.default.type": "refund"}
    assert decoder(identity_union, properties)(record()) == Refund(id=1)
    # Without a default type, pydantic's union decides, as before type headers.
    assert decoder(identity_union)(record()) == Order(id=1)


def test_use_type_headers_false_ignores_the_header():
    properties = {
        **MAPPING,
        "spring.json.use.type.headers": "false",
        "spring.json.value.default.type": "tests.json_models.Refund",
    }
    decode = decoder(identity_union, properties)
    assert decode(record(headers=[("__TypeId__", b"order")])) == Refund(id=1)
    assert decode(record(headers=[("__TypeId__", b"nonsense")])) == Refund(id=1)


def test_an_untyped_payload_with_a_json_deserializer_takes_the_mapped_model_or_the_default():
    def untyped(payload):
        return payload

    for deserializer in (JsonDeserializer(), ErrorHandlingDeserializer(JsonDeserializer())):
        decode = decoder(
            untyped,
            {**MAPPING, "spring.json.value.default.type": "tests.json_models:Order"},
            value_deserializer=deserializer,
        )
        assert decode(record(headers=[("__TypeId__", b"refund")])) == Refund(id=1)
        assert decode(record()) == Order(id=1)
    plain = decoder(untyped, MAPPING, value_deserializer=JsonDeserializer())
    assert plain(record(headers=[("__TypeId__", b"other")])) == {"id": 1}


def test_a_key_union_reads_the_key_type_header():
    def on_key(payload: Order, key: Annotated[OrderKey | Order, Key]) -> Any:
        return key

    decode = decoder(on_key, {"spring.json.type.mapping": "key:tests.json_models.OrderKey"})
    rec = record(
        key=b'{"region": "eu", "id": 4}',
        headers=[("__Key_TypeId__", b"key"), ("__TypeId__", b"x")],
    )
    assert decode(rec) == OrderKey("eu", 4)
    with pytest.raises(DeserializationError, match="__Key_TypeId__='nope'") as caught:
        decode(record(key=b'{"id": 4}', headers=[("__Key_TypeId__", b"nope")]))
    assert caught.value.part == "key"


def test_a_batch_of_mixed_records_gets_each_its_model():
    def on_batch(items: list[Order | Refund]) -> None: ...

    invoker = bind(on_batch, name="b", batch=True, manual_ack=False, properties=MAPPING)
    assert invoker.decode_one(record(headers=[("__TypeId__", b"refund")])) == Refund(id=1)
    assert invoker.decode_one(record(headers=[("__TypeId__", b"order")])) == Order(id=1)


def test_a_record_parameter_decodes_by_the_headers():
    def on_record(rec: ConsumerRecord[str, Order | Refund]) -> Any:
        return rec.value

    decoded = decoder(on_record, MAPPING)(record(headers=[("__TypeId__", b"refund")]))
    assert decoded == Refund(id=1)


def test_invalid_bytes_for_the_chosen_model_name_it():
    with pytest.raises(DeserializationError, match="as Refund"):
        decoder(identity_union, MAPPING)(
            record(value=b'{"x": 1}', headers=[("__TypeId__", b"refund")])
        )


def test_a_python_default_type_that_cannot_be_imported_fails_at_registration():
    with pytest.raises(ConfigurationError, match=r"spring\.json\.value\.default\.type"):
        decoder(identity_union, {"spring.json.value.default.type": "tests.json_models.Ordr"})


def test_a_java_default_type_is_skipped_with_a_warning(caplog):
    decoder(identity_union, {"spring.json.value.default.type": "com.example.Order"})
    assert "'com.example.Order' is a Java class" in caplog.text


def test_a_single_model_without_a_mapping_keeps_the_plain_decoder():
    # Nothing reads headers here, so the per-record path is the one without type headers.
    def on_order(order: Order) -> Order:
        return order

    invoker = bind(on_order, name="t", batch=False, manual_ack=False, properties={})
    decode_value = invoker.call.__closure__[0].cell_contents
    assert decode_value.__qualname__.endswith(("decode_json", "decode_model"))
    assert decoder(on_order)(record(headers=[("__TypeId__", b"anything")])) == Order(id=1)
