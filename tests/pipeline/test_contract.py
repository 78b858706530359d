"""Tests for the event contract: valid events, and each invalid payload's code and field."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import base64
import json
from datetime import UTC, datetime

import pytest

from pipeline.contract import (
    MAX_PAYLOAD_BYTES,
    ContractError,
    parse_event,
    parse_or_dead_letter,
)
from pipeline.records import DeadLetter, Event

VALID = {
    "event_id": "e-1",
    "entity_id": "card-1",
    "event_time": "2024-05-01T12:00:00+02:00",
    "features": {"amount": 12.5, "count": 3},
    "attributes": {"country": "FR", "online": True, "score": 7},
    "message": "purchase",
}


def payload(**changes):
    document = {**VALID, **changes}
    return json.dumps({key: value for key, value in document.items() if value is not ...})


def test_valid_event_parses():
    event = parse_event(payload())
    assert event == Event(
        event_id="e-1",
        entity_id="card-1",
        event_time=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        features={"amount": 12.5, "count": 3.0},
        attributes={"country": "FR", "online": True, "score": 7},
        message="purchase",
    )


def test_optional_fields_may_be_absent():
    event = parse_event(payload(attributes=..., message=...))
    assert event.attributes == {}
    assert event.message is None


def test_event_round_trips_through_to_json():
    event = parse_event(payload())
    assert parse_event(event.to_json_line()) == event


INVALID = [
    ("not json", "{", "invalid_json", None),
    ("array", "[1, 2]", "not_an_object", "JSON array"),
    ("string", '"hello"', "not_an_object", "JSON string"),
    ("no event_id", payload(event_id=...), "missing_field", "'event_id'"),
    ("no entity_id", payload(entity_id=...), "missing_field", "'entity_id'"),
    ("no event_time", payload(event_time=...), "missing_field", "'event_time'"),
    ("no features", payload(features=...), "missing_field", "'features'"),
    ("extra field", payload(user="x"), "unknown_field", "'user'"),
    ("numeric event_id", payload(event_id=5), "invalid_type", "'event_id'"),
    ("empty entity_id", payload(entity_id=""), "empty_value", "'entity_id'"),
    ("long event_id", payload(event_id="x" * 257), "too_long", "'event_id'"),
    (
        "time without zone",
        payload(event_time="2024-05-01T12:00:00"),
        "invalid_timestamp",
        "'event_time'",
    ),
    ("time as number", payload(event_time=1714564800), "invalid_type", "'event_time'"),
    ("features list", payload(features=[1, 2]), "invalid_type", "'features'"),
    ("no features entries", payload(features={}), "empty_value", "'features'"),
    (
        "too many features",
        payload(features={f"f{i}": 1 for i in range(65)}),
        "too_many_entries",
        "'features'",
    ),
    ("boolean feature", payload(features={"flag": True}), "invalid_type", "'features.flag'"),
    ("string feature", payload(features={"amount": "12"}), "invalid_type", "'features.amount'"),
    ("null feature", payload(features={"amount": None}), "invalid_type", "'features.amount'"),
    ("NaN feature", payload().replace("12.5", "NaN"), "non_finite_number", "NaN"),
    (
        "overflow feature",
        payload().replace("12.5", "1e400"),
        "non_finite_number",
        "'features.amount'",
    ),
    (
        "huge integer",
        payload().replace("12.5", "1" + "0" * 400),
        "non_finite_number",
        "'features.amount'",
    ),
    ("empty feature name", payload(features={"": 1.0}), "empty_value", "'features'"),
    ("long feature name", payload(features={"f" * 257: 1.0}), "too_long", "'features'"),
    (
        "repeated feature",
        payload().replace('"count": 3', '"amount": 3'),
        "duplicate_key",
        "'amount'",
    ),
    (
        "overflow attribute",
        payload(attributes={"rate": 1.5}).replace("1.5", "1e400"),
        "non_finite_number",
        "'attributes.rate'",
    ),
    (
        "huge integer attribute",
        payload(attributes={"rate": 15}).replace("15", "1" + "0" * 400),
        "non_finite_number",
        "'attributes.rate'",
    ),
    ("long attribute name", payload(attributes={"a" * 257: "x"}), "too_long", "'attributes'"),
    ("nested attribute", payload(attributes={"a": {"b": 1}}), "invalid_type", "'attributes.a'"),
    ("attributes list", payload(attributes=["a"]), "invalid_type", "'attributes'"),
    ("message number", payload(message=5), "invalid_type", "'message'"),
    ("long message", payload(message="é" * 4097), "too_long", "'message'"),
    ("long four-byte message", payload(message="\U0001f600" * 2049), "too_long", "'message'"),
    ("duplicate key", '{"event_id": "a", "event_id": "b"}', "duplicate_key", "'event_id'"),
    ("too large", payload(message="x" * (MAX_PAYLOAD_BYTES + 1)), "too_large", "64 KiB"),
]


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_payload_code_and_message(raw, code, fragment):
    with pytest.raises(ContractError) as caught:
        parse_event(raw)
    assert caught.value.code == code
    if fragment:
        assert fragment in str(caught.value)


def test_message_at_byte_limit_parses():
    message = "\U0001f600" * 2048
    assert parse_event(payload(message=message)).message == message


def test_message_with_lone_surrogate_parses():
    # JSON may escape a code point that UTF-8 cannot encode; the parser must not crash.
    raw = payload(message="x").replace('"x"', '"\\ud800"')
    assert parse_event(raw).message == "\ud800"


def test_integer_values_become_floats_or_stay_integers():
    event = parse_event(payload(features={"count": 3}, attributes={"n": 3, "r": 0.5}))
    assert event.features == {"count": 3.0}
    assert type(event.features["count"]) is float
    assert event.attributes == {"n": 3, "r": 0.5}
    assert type(event.attributes["n"]) is int


def test_non_utf8_is_dead_lettered_as_base64():
    raw = b'{"event_id": "\xff"}'
    letter = parse_or_dead_letter(raw)
    assert isinstance(letter, DeadLetter)
    assert letter.error_code == "invalid_encoding"
    assert letter.payload_encoding == "base64"
    assert base64.b64decode(letter.payload) == raw


def test_dead_letter_keeps_event_id_when_readable():
    letter = parse_or_dead_letter(payload(features={}))
    assert isinstance(letter, DeadLetter)
    assert letter.event_id == "e-1"
    assert letter.stage == "parse"
    assert letter.payload == payload(features={})


def test_dead_letter_without_event_id():
    letter = parse_or_dead_letter("[]")
    assert isinstance(letter, DeadLetter)
    assert letter.event_id is None


@pytest.mark.parametrize("mark", [b"\xef\xbb\xbf", "\ufeff"])
def test_byte_order_mark_is_ignored(mark):
    raw = mark + (payload().encode() if isinstance(mark, bytes) else payload())
    assert parse_event(raw) == parse_event(payload())


@pytest.mark.parametrize("mark", [b"\xef\xbb\xbf", "\ufeff"])
def test_byte_order_mark_keeps_dead_letter_event_id(mark):
    body = payload(features={})
    letter = parse_or_dead_letter(mark + (body.encode() if isinstance(mark, bytes) else body))
    assert isinstance(letter, DeadLetter)
    assert letter.error_code == "empty_value"
    assert letter.event_id == "e-1"
