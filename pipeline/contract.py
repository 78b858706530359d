"""The input event contract: parse one payload into an Event or a DeadLetter with a stable code."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pipeline.records import AttributeValue, DeadLetter, Event, parse_timestamp

MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_ID_CHARS: Final = 256
MAX_FEATURES: Final = 64
MAX_NAME_CHARS: Final = 256
MAX_MESSAGE_BYTES: Final = 8 * 1024
MAX_ATTRIBUTES: Final = 64

REQUIRED_FIELDS: Final = ("event_id", "entity_id", "event_time", "features")
OPTIONAL_FIELDS: Final = ("attributes", "message")
_REQUIRED_SET: Final = frozenset(REQUIRED_FIELDS)
_ALLOWED_SET: Final = frozenset(REQUIRED_FIELDS + OPTIONAL_FIELDS)
STAGE: Final = "parse"
# RFC 8259 section 8.1 lets a parser ignore a byte order mark before JSON text, and some
# Windows editors write one at the start of a file, where it precedes the first event.
_BYTE_ORDER_MARK: Final = "\ufeff"

# Stable error codes, documented in docs/pipeline.md. Consumers of the dead letter may
# match on them, so existing codes keep their meaning.
INVALID_ENCODING: Final = "invalid_encoding"
TOO_LARGE: Final = "too_large"
INVALID_JSON: Final = "invalid_json"
DUPLICATE_KEY: Final = "duplicate_key"
NOT_AN_OBJECT: Final = "not_an_object"
MISSING_FIELD: Final = "missing_field"
UNKNOWN_FIELD: Final = "unknown_field"
INVALID_TYPE: Final = "invalid_type"
EMPTY_VALUE: Final = "empty_value"
TOO_LONG: Final = "too_long"
TOO_MANY: Final = "too_many_entries"
INVALID_TIMESTAMP: Final = "invalid_timestamp"
NON_FINITE_NUMBER: Final = "non_finite_number"


class ContractError(ValueError):
    """A payload that breaks the event contract; `code` is stable, `field` names the culprit."""

    def __init__(self, code: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


def parse_event(payload: bytes | str) -> Event:
    """Parse one payload into an Event, or raise ContractError with a code and the field."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ContractError(
            TOO_LARGE,
            None,
            f"payload is {len(raw)} bytes; the maximum is {MAX_PAYLOAD_BYTES} bytes (64 KiB)",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ContractError(
            INVALID_ENCODING,
            None,
            f"payload is not UTF-8 (invalid byte at offset {error.start}); send UTF-8 JSON",
        ) from None

    document = _load_json(text.removeprefix(_BYTE_ORDER_MARK))
    if not isinstance(document, dict):
        raise ContractError(
            NOT_AN_OBJECT,
            None,
            f"payload is a JSON {_json_type(document)}; send one JSON object per event",
        )
    return _event_from_object(document)


def parse_or_dead_letter(payload: bytes | str) -> Event | DeadLetter:
    """Parse one payload, returning a DeadLetter (stage "parse") instead of raising."""
    try:
        return parse_event(payload)
    except ContractError as error:
        return DeadLetter.for_payload(
            payload,
            error_code=error.code,
            error_message=str(error),
            stage=STAGE,
            event_id=_event_id_if_readable(payload),
        )


def _reject_constant(name: str) -> Any:
    raise ContractError(
        NON_FINITE_NUMBER, None, f"payload contains {name}; JSON numbers must be finite"
    )


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ContractError(DUPLICATE_KEY, key, f"key {key!r} appears twice in one JSON object")
        seen.add(key)
    raise AssertionError("a dict built from pairs without repeated keys lost an entry")


# One decoder for every payload: json.loads with hooks would build a new one per call.
_DECODER: Final = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicates
)


def _load_json(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise ContractError(
            INVALID_JSON,
            None,
            f"payload is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None
    except RecursionError:
        raise ContractError(INVALID_JSON, None, "payload nests JSON too deeply") from None


def _event_from_object(document: dict[str, Any]) -> Event:
    fields = document.keys()
    if not (fields >= _REQUIRED_SET and fields <= _ALLOWED_SET):
        _check_field_names(document)

    event_id = _identifier(document, "event_id")
    entity_id = _identifier(document, "entity_id")
    event_time = _timestamp(document["event_time"])
    features = _features(document["features"])
    attributes = _attributes(document.get("attributes"))
    message = _message(document.get("message"))
    return Event(
        event_id=event_id,
        entity_id=entity_id,
        event_time=event_time,
        features=features,
        attributes=attributes,
        message=message,
    )


def _check_field_names(document: dict[str, Any]) -> None:
    """Raise for the first missing required field, else for the first unknown field."""
    for name in REQUIRED_FIELDS:
        if name not in document:
            raise ContractError(MISSING_FIELD, name, f"field {name!r} is missing")
    for name in document:
        if name not in REQUIRED_FIELDS and name not in OPTIONAL_FIELDS:
            allowed = ", ".join(REQUIRED_FIELDS + OPTIONAL_FIELDS)
            raise ContractError(
                UNKNOWN_FIELD, name, f"field {name!r} is not part of the contract; use {allowed}"
            )


def _identifier(document: Mapping[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str):
        raise ContractError(
            INVALID_TYPE, name, f"field {name!r} is a JSON {_json_type(value)}; use a string"
        )
    if not value:
        raise ContractError(EMPTY_VALUE, name, f"field {name!r} is empty")
    if len(value) > MAX_ID_CHARS:
        raise ContractError(
            TOO_LONG,
            name,
            f"field {name!r} has {len(value)} characters; the maximum is {MAX_ID_CHARS}",
        )
    return value


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ContractError(
            INVALID_TYPE,
            "event_time",
            f"field 'event_time' is a JSON {_json_type(value)}; use an RFC 3339 string",
        )
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise ContractError(
            INVALID_TIMESTAMP, "event_time", f"field 'event_time': {error}"
        ) from None


def _number(value: Any, field: str) -> float:
    # bool is a subclass of int in Python, but JSON true/false are not numbers.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(
            INVALID_TYPE, field, f"field {field!r} is a JSON {_json_type(value)}; use a number"
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ContractError(
            NON_FINITE_NUMBER, field, f"field {field!r} is out of the range of a 64-bit float"
        )
    return number


def _name(name: str, field: str) -> None:
    if not name:
        raise ContractError(EMPTY_VALUE, field, f"field {field!r} has an empty name")
    if len(name) > MAX_NAME_CHARS:
        raise ContractError(
            TOO_LONG,
            field,
            f"field {field!r} has a name of {len(name)} characters; the maximum is "
            f"{MAX_NAME_CHARS}",
        )


def _features(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ContractError(
            INVALID_TYPE,
            "features",
            f"field 'features' is a JSON {_json_type(value)}; use an object of name to number",
        )
    if not value:
        raise ContractError(EMPTY_VALUE, "features", "field 'features' needs at least one entry")
    if len(value) > MAX_FEATURES:
        raise ContractError(
            TOO_MANY,
            "features",
            f"field 'features' has {len(value)} entries; the maximum is {MAX_FEATURES}",
        )
    # An object of only finite floats with short names needs no conversion, so it is
    # returned as it is. `x - x == 0.0` is False exactly for infinities and NaN.
    for name, number in value.items():
        if not (
            type(number) is float and number - number == 0.0 and 0 < len(name) <= MAX_NAME_CHARS
        ):
            return _checked_features(value)
    return value


def _checked_features(value: dict[str, Any]) -> dict[str, float]:
    features: dict[str, float] = {}
    for name, number in value.items():
        _name(name, "features")
        features[name] = _number(number, f"features.{name}")
    return features


def _attributes(value: Any) -> dict[str, AttributeValue]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ContractError(
            INVALID_TYPE,
            "attributes",
            f"field 'attributes' is a JSON {_json_type(value)}; use an object",
        )
    if len(value) > MAX_ATTRIBUTES:
        raise ContractError(
            TOO_MANY,
            "attributes",
            f"field 'attributes' has {len(value)} entries; the maximum is {MAX_ATTRIBUTES}",
        )
    # Strings, booleans and finite floats with short names need no conversion, so an
    # object of only those is returned as it is. Integers take the full check, because a
    # huge one overflows a 64-bit float.
    for name, item in value.items():
        kind = type(item)
        if not (
            (kind is str or kind is bool or (kind is float and item - item == 0.0))
            and 0 < len(name) <= MAX_NAME_CHARS
        ):
            return _checked_attributes(value)
    return value


def _checked_attributes(value: dict[str, Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    for name, item in value.items():
        _name(name, "attributes")
        field = f"attributes.{name}"
        if isinstance(item, str | bool):
            attributes[name] = item
        elif isinstance(item, int | float):
            number = _number(item, field)
            attributes[name] = item if isinstance(item, int) else number
        else:
            raise ContractError(
                INVALID_TYPE,
                field,
                f"field {field!r} is a JSON {_json_type(item)}; use a string, number or boolean",
            )
    return attributes


def _message(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContractError(
            INVALID_TYPE, "message", f"field 'message' is a JSON {_json_type(value)}; use a string"
        )
    # A code point takes at most 4 bytes in UTF-8, so a short message needs no encoding.
    if len(value) * 4 <= MAX_MESSAGE_BYTES:
        return value
    # JSON can escape a lone surrogate (\ud800), which strict UTF-8 cannot encode.
    # "surrogatepass" counts it as 3 bytes, fewer than its 6-byte escape in the payload.
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise ContractError(
            TOO_LONG,
            "message",
            f"field 'message' is {size} bytes; the maximum is {MAX_MESSAGE_BYTES} bytes (8 KiB)",
        )
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _event_id_if_readable(payload: bytes | str) -> str | None:
    """Return the payload's event_id when it is a readable, valid string, for the dead letter."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    if isinstance(payload, str):
        # json.loads skips a byte order mark at the start of bytes, but not of a str.
        payload = payload.removeprefix(_BYTE_ORDER_MARK)
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if isinstance(document, dict):
        event_id = document.get("event_id")
        if isinstance(event_id, str) and 0 < len(event_id) <= MAX_ID_CHARS:
            return event_id
    return None
