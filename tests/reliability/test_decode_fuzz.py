"""Record bytes under random input: decoding either gives the handler's type or raises
``DeserializationError`` with a short message naming the record, never another exception.

Such an error is what the error handler sends to the recoverer (the dead-letter topic)
without retrying; ``test_poison_records`` shows that path against a broker.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from hypothesis import example, given
from hypothesis import strategies as st

from kafkaboot.errors import DeserializationError, SerializationError
from kafkaboot.listener.decoding import decoder_for, header_decoder
from kafkaboot.serialization import ErrorHandlingDeserializer, JsonDeserializer, deserializer_for
from sample_producer_service.models import Message
from tests.reliability.bad_input_support import fuzz_settings, nested_arrays

pytestmark = pytest.mark.reliability

MAX_MESSAGE = 2_000
"""An error message is for a log line and a dead-letter header: it must stay short, whatever
the record holds (pydantic and json show at most an excerpt of the input)."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
message_like = st.fixed_dictionaries(
    {"customer_id": st.text(max_size=70) | json_values, "sequence": json_values},
    optional={"payload": json_values, "timestamp": st.text(max_size=30) | json_values},
)


@st.composite
def truncated(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> bytes:
    whole = json.dumps(draw(values)).encode()
    return whole[: draw(st.integers(0, max(0, len(whole) - 1)))]


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(500, 100_000))
    if draw(st.booleans()):
        return nested_arrays(depth)
    inner = b'{"a":' * depth + b"1" + b"}" * depth
    # Deep inside an otherwise valid message, where only a full parse finds it.
    return b'{"customer_id": "c", "sequence": 1, "payload": ' + inner + b"}"


@st.composite
def huge_strings(draw: st.DrawFn) -> bytes:
    text = "x" * draw(st.integers(100_000, 2_000_000))
    return json.dumps(draw(st.sampled_from([text, {"customer_id": text, "sequence": 1}]))).encode()


record_bytes = (
    st.binary(max_size=300)
    | truncated(message_like)
    | st.builds(lambda v: json.dumps(v).encode(), message_like)
    | st.builds(lambda v: json.dumps(v).encode(), json_values)
    | deeply_nested()
    | huge_strings()
    | st.builds(lambda t: t.encode("utf-16"), st.text(max_size=20))
)
TARGETS = [Message, Message | None, dict[str, Any], list[int], int, float, str, bytes, Any]


def _record(value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> Any:
    size = len(value) if value is not None else -1
    return ConsumerRecord("orders", 3, 41, 0, 0, None, value, None, 0, size, headers or [])


def _raised(expected: type[Exception], call: Any, *args: Any) -> Any:
    """The ``expected`` exception ``call`` raised, else ``None``; any other one fails."""
    try:
        call(*args)
    except expected as error:
        return error
    return None


def _assert_clear(error: DeserializationError, record: Any, part: str = "value") -> None:
    text = str(error)
    assert "orders-3@41" in text, text
    assert error.record is record
    assert error.part == part
    assert len(text) <= MAX_MESSAGE, f"{len(text)} characters: {text[:300]}..."


@fuzz_settings(200)
@given(target=st.sampled_from(TARGETS), data=record_bytes)
@example(target=Any, data=nested_arrays(100_000))  # Found: RecursionError from json.loads.
@example(target=Message, data=nested_arrays(100_000))
def test_a_value_decodes_or_is_a_deserialization_error(target, data):
    decode = decoder_for(target, JsonDeserializer(), parameter="message")
    record = _record(data)
    error = _raised(DeserializationError, decode, data, record)
    if error is not None:
        _assert_clear(error, record)


@fuzz_settings(100)
@given(target=st.sampled_from([int, str, bytes, int | None, Message]), data=record_bytes)
def test_a_header_decodes_or_is_a_deserialization_error(target, data):
    decode = header_decoder(target, "instance-id", parameter="instance")
    record = _record(b"{}", [("instance-id", data)])
    error = _raised(DeserializationError, decode, data, record)
    if error is not None:
        _assert_clear(error, record, part="header 'instance-id'")
        if len(data) > 64:  # The raw header is shown, cut short.
            assert repr(data[:64]) in str(error)


@fuzz_settings(200)
@given(
    name=st.sampled_from(["json", "string", "bytes", "integer", "long", "float", "double"]),
    data=record_bytes,
)
@example(name="json", data=nested_arrays(100_000))  # Found: RecursionError from json.loads.
def test_a_deserializer_returns_or_raises_serialization_error(name, data):
    deserializer = deserializer_for(name)
    error = _raised(SerializationError, deserializer.deserialize, "orders", data)
    if error is not None:
        assert "orders" in str(error)
        assert len(str(error)) <= MAX_MESSAGE
    failure = ErrorHandlingDeserializer(deserializer).deserialize("orders", data)
    assert getattr(failure, "data", data) == data  # A failure keeps the bytes untouched.


@fuzz_settings(100)
@given(data=record_bytes)
@example(data=nested_arrays(100_000))
def test_a_json_deserializer_with_a_target_raises_serialization_error(data):
    error = _raised(SerializationError, JsonDeserializer(Message).deserialize, "orders", data)
    if error is not None:
        assert "cannot be read as Message" in str(error)
        assert len(str(error)) <= MAX_MESSAGE
