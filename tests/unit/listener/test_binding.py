"""Handler signatures → invokers: decoding by type hint, markers, and registration errors."""

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from pydantic import BaseModel

from kafkaboot.errors import DeserializationError, ListenerDefinitionError
from kafkaboot.listener import (
    Acknowledgment,
    Header,
    Headers,
    Key,
    Offset,
    Partition,
    Timestamp,
    Topic,
)
from kafkaboot.listener.binding import bind
from kafkaboot.serialization import (
    ErrorHandlingDeserializer,
    JsonDeserializer,
    StringDeserializer,
)


class Order(BaseModel):
    id: int


@dataclasses.dataclass
class Point:
    x: int


def record(value=b'{"id": 1}', key=b"k1", headers=(), offset=7, timestamp=1_700_000_000_000):
    return ConsumerRecord(
        topic="orders",
        partition=2,
        offset=offset,
        timestamp=timestamp,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=list(headers),
    )


def call(handler, rec=None, ack=None, consumer=None, **options):
    options.setdefault("batch", False)
    options.setdefault("manual_ack", False)
    invoker = bind(handler, name="test", **options)
    return invoker.call(rec or record(), ack, consumer)


@pytest.mark.parametrize(
    ("annotation", "raw", "expected"),
    [
        (str, b"hello", "hello"),
        (bytes, b"\x00\x01", b"\x00\x01"),
        (dict, b'{"a": 1}', {"a": 1}),
        (dict[str, Any], b'{"a": {"b": [1, null]}}', {"a": {"b": [1, None]}}),
        (list, b'[1, "x"]', [1, "x"]),
        (list[Any], b"[]", []),
        (list[int], b"[1, 2]", [1, 2]),
        (Order, b'{"id": 5}', Order(id=5)),
        (Point, b'{"x": 3}', Point(3)),
        (int, b"42", 42),
        (Order | None, None, None),
    ],
)
def test_payload_is_decoded_from_the_type_hint(annotation, raw, expected):
    def handler(payload):
        return payload

    handler.__annotations__ = {"payload": annotation}
    assert call(handler, record(value=raw)) == expected


@pytest.mark.parametrize(
    ("annotation", "raw", "problem"),
    [
        (dict, b"[1, 2]", "expected JSON an object, got list"),
        (dict[str, Any], b'"text"', "expected JSON an object, got str"),
        (list[Any], b'{"a": 1}', "expected JSON an array, got dict"),
        (dict, b"{not json", "as dict"),
    ],
)
def test_a_plain_dict_or_list_payload_refuses_other_json(annotation, raw, problem):
    def handler(payload):
        return payload

    handler.__annotations__ = {"payload": annotation}
    with pytest.raises(DeserializationError, match=problem):
        call(handler, record(value=raw))


def test_unannotated_payload_uses_the_configured_deserializer():
    def handler(payload):
        return payload

    assert call(handler, value_deserializer=JsonDeserializer()) == {"id": 1}
    assert call(handler) == b'{"id": 1}'


def test_bad_json_for_a_model_is_a_deserialization_error_carrying_the_record():
    def handler(order: Order):
        return order

    bad = record(value=b"not json")
    with pytest.raises(DeserializationError, match=r"orders-2@7 as Order") as excinfo:
        call(handler, bad)
    assert excinfo.value.record is bad


def test_null_value_for_a_non_optional_payload_says_how_to_accept_it():
    def handler(order: Order):
        return order

    with pytest.raises(DeserializationError, match=r"Order \| None"):
        call(handler, record(value=None))


def test_typed_consumer_record_decodes_key_and_value():
    def handler(rec: ConsumerRecord[str, Order]):
        return rec

    decoded = call(handler)
    assert (decoded.key, decoded.value, decoded.offset) == ("k1", Order(id=1), 7)


def test_raw_consumer_record_is_passed_as_is():
    raw = record()

    def handler(rec: ConsumerRecord):
        return rec

    assert call(handler, raw) is raw


def test_key_headers_and_record_fields_on_request():
    def handler(
        order: Order,
        key: Annotated[str, Key],
        trace: Annotated[str, Header("trace-id")],
        attempt: Annotated[int, Header("attempt")],
        headers: Annotated[dict[str, bytes], Headers],
        topic: Annotated[str, Topic],
        partition: Annotated[int, Partition()],
        offset: Annotated[int, Offset],
        when: Annotated[datetime, Timestamp],
        consumer: AIOKafkaConsumer,
    ):
        return order, key, trace, attempt, headers, topic, partition, offset, when, consumer

    rec = record(headers=[("trace-id", b"abc"), ("attempt", b"3")])
    sentinel = object()
    assert call(handler, rec, consumer=sentinel) == (
        Order(id=1),
        "k1",
        "abc",
        3,
        {"trace-id": b"abc", "attempt": b"3"},
        "orders",
        2,
        7,
        datetime.fromtimestamp(1_700_000_000, tz=UTC),
        sentinel,
    )


def test_missing_required_header_is_an_error_and_optional_one_is_none():
    def required(order: Order, trace: Annotated[str, Header("trace-id")]):
        return trace

    def optional(order: Order, trace: Annotated[str | None, Header("trace-id")] = None):
        return trace

    with pytest.raises(DeserializationError, match="no header 'trace-id'"):
        call(required)
    assert call(optional) is None


# -- a key or header that cannot be decoded is a deserialization failure ------------------
# Such an error is not retried (the same bytes fail the same way on every delivery): it goes
# to the recoverer at once, so it must name the record, the parameter and the header.

NOT_UTF8 = b"\xff\xfe"


@pytest.mark.parametrize(
    ("annotation", "raw", "why"),
    [
        (str, NOT_UTF8, "can't decode byte 0xff"),
        (str | None, NOT_UTF8, "can't decode byte 0xff"),
        (int, NOT_UTF8, "can't decode byte 0xff"),
        (int | None, b"three", "invalid literal for int()"),
        (Order, NOT_UTF8, "Invalid JSON"),
    ],
    ids=["str", "str-or-none", "int", "int-or-none-not-a-number", "model"],
)
@pytest.mark.parametrize("optional", [False, True], ids=["required", "with-default"])
def test_an_undecodable_header_is_a_deserialization_error_naming_record_parameter_header(
    annotation, raw, why, optional
):
    def required(order, instance):
        return instance

    def with_default(order, instance=None):
        return instance

    handler = with_default if optional else required
    handler.__annotations__ = {
        "order": Order,
        "instance": Annotated[annotation, Header("instance-id")],
    }
    bad = record(headers=[("instance-id", raw)])
    with pytest.raises(DeserializationError) as excinfo:
        call(handler, bad)
    error = excinfo.value
    for named in ("orders-2@7", "parameter 'instance'", "header 'instance-id'", why):
        assert named in str(error), (named, str(error))
    assert (error.record is bad, error.part, error.parameter) == (
        True,
        "header 'instance-id'",
        "instance",
    )


def test_an_absent_optional_header_gives_the_parameter_default():
    def handler(order: Order, attempt: Annotated[int, Header("attempt")] = 1):
        return attempt

    assert call(handler) == 1
    assert call(handler, record(headers=[("attempt", b"3")])) == 3


def test_an_undecodable_key_is_a_deserialization_error_naming_record_and_parameter():
    def handler(order: Order, customer: Annotated[str, Key]):
        return customer

    bad = record(key=NOT_UTF8)
    with pytest.raises(DeserializationError) as excinfo:
        call(handler, bad)
    error = excinfo.value
    for named in ("orders-2@7", "parameter 'customer'", "can't decode byte 0xff"):
        assert named in str(error), (named, str(error))
    assert (error.record is bad, error.part, error.parameter) == (True, "key", "customer")


class CustomerIdDeserializer:
    """A user's key deserializer that reports bad bytes with ValueError, as most parsers do."""

    def deserialize(self, topic, data):
        raise ValueError(f"{data!r} is not a customer id")


@pytest.mark.parametrize(
    ("deserializer", "why"),
    [
        (CustomerIdDeserializer(), "is not a customer id"),
        # Spring's ErrorHandlingDeserializer returns the failure instead of raising it.
        (ErrorHandlingDeserializer(StringDeserializer()), "can't decode byte 0xff"),
    ],
    ids=["value-error", "error-handling-deserializer"],
)
def test_a_failing_key_deserializer_is_a_deserialization_error(deserializer, why):
    def handler(order: Order, customer: Annotated[Any, Key]):
        return customer

    with pytest.raises(DeserializationError, match=r"orders-2@7.*parameter 'customer'") as info:
        call(handler, record(key=NOT_UTF8), key_deserializer=deserializer)
    assert why in str(info.value)


def test_acknowledgment_is_passed_in_manual_mode():
    ack = Acknowledgment()

    def handler(order: Order, ack: Acknowledgment):
        return ack

    assert call(handler, ack=ack, manual_ack=True) is ack


def test_methods_bind_without_self():
    class Service:
        def on_order(self, order: Order) -> int:
            return order.id

    assert call(Service().on_order) == 1


def test_async_handler_is_recognised():
    async def handler(order: Order):
        return order

    assert bind(handler, name="x", batch=False, manual_ack=False).is_async
    assert not bind(lambda payload: None, name="x", batch=False, manual_ack=False).is_async


def test_batch_listener_decodes_each_record():
    def handler(orders: list[Order]):
        return orders

    invoker = bind(handler, name="x", batch=True, manual_ack=False)
    assert invoker.batch
    assert invoker.decode_one(record()) == Order(id=1)
    assert invoker.call([Order(id=1)], None, None) == [Order(id=1)]


def test_batch_of_typed_records():
    def handler(records: list[ConsumerRecord[str, str]]):
        return records

    invoker = bind(handler, name="x", batch=True, manual_ack=False)
    decoded = invoker.decode_one(record(value=b"v"))
    assert (decoded.key, decoded.value) == ("k1", "v")


# -- impossible signatures are registration-time errors ----------------------------------


def test_two_payload_parameters():
    def handler(a: str, b: str): ...

    with pytest.raises(ListenerDefinitionError, match=r"listener test: .*'a' and 'b' both look"):
        bind(handler, name="test", batch=False, manual_ack=False)


def test_acknowledgment_without_manual_ack_mode():
    def handler(order: Order, ack: Acknowledgment): ...

    with pytest.raises(ListenerDefinitionError, match="ack_mode='manual'"):
        bind(handler, name="test", batch=False, manual_ack=False)


def test_manual_ack_mode_without_acknowledgment():
    def handler(order: Order): ...

    with pytest.raises(ListenerDefinitionError, match="nothing would ever be committed"):
        bind(handler, name="test", batch=False, manual_ack=True)


def test_batch_listener_without_a_list():
    def handler(order: Order): ...

    with pytest.raises(ListenerDefinitionError, match=r"list\[Model\]"):
        bind(handler, name="test", batch=True, manual_ack=False)


def test_var_args_cannot_be_bound():
    def handler(*args): ...

    with pytest.raises(ListenerDefinitionError, match=r"\*args"):
        bind(handler, name="test", batch=False, manual_ack=False)


def test_unresolvable_type_hint_names_the_fix():
    def handler(order: "Missing"): ...  # noqa: F821

    with pytest.raises(ListenerDefinitionError, match="cannot be resolved"):
        bind(handler, name="test", batch=False, manual_ack=False)


def test_a_decoded_record_keeps_every_other_field_of_the_fetched_one():
    """The decoded record is built field by field (for speed): a field aiokafka adds must
    not be dropped on the way."""
    import dataclasses as dc

    from aiokafka import ConsumerRecord as Fetched

    values = {f.name: f"<{f.name}>" for f in dc.fields(Fetched)}
    values |= {"key": b"k", "value": b"v", "headers": ()}
    fetched = Fetched(**values)

    def handler(record: ConsumerRecord[str, str]) -> ConsumerRecord[str, str]:
        return record

    invoker = bind(handler, name="h", batch=False, manual_ack=False)
    decoded = invoker.call(fetched, None, None)
    expected = dc.asdict(fetched) | {"key": "k", "value": "v"}
    assert dc.asdict(decoded) == expected


class _Upper(BaseModel):
    id: int
    name: str = ""

    @classmethod
    def model_validate_json(cls, json_data: Any, **kwargs: Any) -> "_Upper":
        model = super().model_validate_json(json_data, **kwargs)
        return model.model_copy(update={"name": model.name.upper()})


def test_a_model_of_its_own_model_validate_json_is_decoded_by_it():
    # The plain-model fast path calls pydantic's validator directly; an override must run.
    seen = []

    def on_upper(item: _Upper) -> None:
        seen.append(item)

    bind(on_upper, name="t", batch=False, manual_ack=False).call(
        record(value=b'{"id": 1, "name": "abc"}'), None, None
    )
    assert seen == [_Upper(id=1, name="ABC")]


@pytest.mark.parametrize("by_dict", [True, False])
def test_a_typed_record_is_the_original_with_key_and_value_decoded(monkeypatch, by_dict):
    """Copied through its ``__dict__`` where aiokafka's ConsumerRecord allows it, else
    built field by field: the same record either way, the original untouched."""
    from aiokafka import ConsumerRecord

    from kafkaboot.listener import parameters

    monkeypatch.setattr(parameters, "_COPY_BY_DICT", by_dict)
    extract = parameters.record_extractor(ConsumerRecord[str, int], None, None, "record")
    raw = ConsumerRecord("t", 3, 42, 1700, 0, b"k", b"7", None, 1, 1, [("h", b"1")])

    decoded = extract(raw, None, None)

    assert decoded == ConsumerRecord("t", 3, 42, 1700, 0, "k", 7, None, 1, 1, [("h", b"1")])
    assert (raw.key, raw.value) == (b"k", b"7")
    assert parameters._COPY_BY_DICT is by_dict
