"""Serializers and deserializers, and their short and Java names."""

import dataclasses
import struct
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from kafkaboot.errors import SerializationError
from kafkaboot.serialization import (
    AutoSerializer,
    BytesDeserializer,
    BytesSerializer,
    DeserializationFailure,
    ErrorHandlingDeserializer,
    JsonDeserializer,
    JsonSerializer,
    StringDeserializer,
    StringSerializer,
    deserializer_for,
    serializer_for,
)


class Order(BaseModel):
    id: int
    placed: datetime


@dataclasses.dataclass
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("string", StringSerializer),
        ("org.apache.kafka.common.serialization.StringSerializer", StringSerializer),
        ("org.apache.kafka.common.serialization.ByteArraySerializer", BytesSerializer),
        ("bytes", BytesSerializer),
        ("json", JsonSerializer),
        ("pydantic", JsonSerializer),
        ("org.springframework.kafka.support.serializer.JsonSerializer", JsonSerializer),
        ("StringSerializer", StringSerializer),
    ],
)
def test_serializer_names(name, kind):
    assert isinstance(serializer_for(name), kind)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("string", StringDeserializer),
        ("org.apache.kafka.common.serialization.StringDeserializer", StringDeserializer),
        ("org.apache.kafka.common.serialization.ByteArrayDeserializer", BytesDeserializer),
        ("org.springframework.kafka.support.serializer.JsonDeserializer", JsonDeserializer),
    ],
)
def test_deserializer_names(name, kind):
    assert isinstance(deserializer_for(name), kind)


def test_error_handling_deserializer_wraps_its_delegate():
    deserializer = deserializer_for(
        "org.springframework.kafka.support.serializer.ErrorHandlingDeserializer",
        delegate="org.springframework.kafka.support.serializer.JsonDeserializer",
    )
    assert isinstance(deserializer, ErrorHandlingDeserializer)
    assert deserializer.deserialize("t", b'{"a": 1}') == {"a": 1}
    failure = deserializer.deserialize("t", b"{not json")
    assert isinstance(failure, DeserializationFailure)
    assert failure.data == b"{not json"  # The bytes are kept, to dead-letter them untouched.
    assert isinstance(failure.error, SerializationError)


def test_error_handling_deserializer_without_delegate_says_how_to_set_it():
    with pytest.raises(SerializationError, match=r"spring\.deserializer\.value\.delegate\.class"):
        deserializer_for("org.springframework.kafka.support.serializer.ErrorHandlingDeserializer")


def test_unknown_name_suggests_known_ones():
    with pytest.raises(SerializationError, match="Did you mean 'json'"):
        serializer_for("jsn")


def test_custom_serializer_by_import_path():
    assert isinstance(serializer_for("kafkaboot.serialization:StringSerializer"), StringSerializer)
    with pytest.raises(SerializationError, match="cannot import"):
        serializer_for("no.such.module:Thing")
    with pytest.raises(SerializationError, match="no serialize"):
        serializer_for("kafkaboot.serialization:StringDeserializer")


def test_json_serializer_writes_models_dataclasses_and_datetimes():
    json = JsonSerializer()
    placed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert json.serialize("t", Order(id=1, placed=placed)) == (
        b'{"id":1,"placed":"2026-01-02T03:04:05Z"}'
    )
    assert json.serialize("t", Point(1, 2)) == b'{"x":1,"y":2}'
    assert json.serialize("t", {"a": [1, None]}) == b'{"a":[1,null]}'
    assert json.serialize("t", None) is None


def test_json_serializer_rejects_unserializable_values_naming_the_type():
    with pytest.raises(SerializationError, match="cannot write a object to topic 't' as JSON"):
        JsonSerializer().serialize("t", object())


def test_json_deserializer_validates_into_a_target_type():
    deserializer = JsonDeserializer().for_type(Order)
    order = deserializer.deserialize("t", b'{"id": 7, "placed": "2026-01-02T03:04:05Z"}')
    assert order == Order(id=7, placed=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    with pytest.raises(SerializationError, match="cannot be read as Order"):
        deserializer.deserialize("t", b'{"id": "seven"}')


def test_string_serializer_rejects_non_text():
    with pytest.raises(SerializationError, match="StringSerializer cannot serialize a int"):
        StringSerializer().serialize("t", 5)
    with pytest.raises(SerializationError, match="not valid utf-8"):
        StringDeserializer().deserialize("t", b"\xff")


def test_java_number_serializers_are_big_endian_fixed_width():
    assert (
        serializer_for("org.apache.kafka.common.serialization.IntegerSerializer").serialize("t", 1)
        == b"\x00\x00\x00\x01"
    )
    assert serializer_for("long").serialize("t", -2) == struct.pack(">q", -2)
    assert deserializer_for("DoubleDeserializer").deserialize("t", struct.pack(">d", 1.5)) == 1.5
    with pytest.raises(SerializationError, match="needs 4"):
        deserializer_for("integer").deserialize("t", b"\x01")


def test_null_stays_null_everywhere():
    for name in ("string", "bytes", "json", "integer"):
        assert serializer_for(name).serialize("t", None) is None
        assert deserializer_for(name).deserialize("t", None) is None


@pytest.mark.parametrize("serializer", [StringSerializer(), AutoSerializer()])
def test_text_with_a_lone_surrogate_is_a_serialization_error(serializer):
    # JSON's "\ud800" escape gives such a str: it has no UTF-8 form.
    with pytest.raises(SerializationError, match="cannot be written as UTF-8"):
        serializer.serialize("orders", "c-\ud800")
