"""Tests for timestamps, dead-letter payload encoding and triage records."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import dataclasses
from datetime import UTC, datetime

import pytest

from pipeline.records import DeadLetter, Event, Triage, format_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01t12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01 14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456789Z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_valid(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text", ["2024-05-01T12:00:00", "2024-05-01", "1714564800", "2024-13-01T00:00:00Z", ""]
)
def test_parse_timestamp_invalid(text):
    with pytest.raises(ValueError, match=r"RFC 3339|not a valid date"):
        parse_timestamp(text)


def test_format_timestamp_utc():
    assert format_timestamp(datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=UTC)) == (
        "2024-05-01T12:00:00.000005Z"
    )


def test_format_timestamp_naive_rejected():
    with pytest.raises(ValueError, match="no time zone"):
        format_timestamp(datetime(2024, 5, 1))


def test_dead_letter_keeps_non_utf8_as_base64():
    raw = b"\xff\xfe{not utf-8"
    letter = DeadLetter.for_payload(
        raw, error_code="invalid_encoding", error_message="x", stage="parse"
    )
    assert letter.payload_encoding == "base64"
    assert letter.payload_bytes() == raw


def test_dead_letter_keeps_utf8_text():
    letter = DeadLetter.for_payload(
        "{é", error_code="invalid_json", error_message="x", stage="parse"
    )
    assert letter.payload == "{é"
    assert letter.payload_encoding == "utf-8"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "maybe"}, "status 'maybe'"),
        ({"status": "done", "severity": "high"}, "needs severity, summary and model"),
        ({"status": "skipped", "severity": "urgent"}, "severity 'urgent'"),
    ],
)
def test_triage_rejects_invalid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Triage(**kwargs)


def test_event_defaults_are_fresh_and_frozen():
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    first = Event("e1", "a", moment, {"v": 1.0})
    second = Event("e2", "a", moment, {"v": 1.0})
    assert first.attributes == {}
    assert first.context == {}
    assert first.attributes is not second.attributes
    assert dataclasses.replace(first, message="m").message == "m"
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.message = "changed"  # type: ignore[misc]
