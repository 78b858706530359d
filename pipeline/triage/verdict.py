"""Triage verdict schema: the JSON the model must return and its parser."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from pipeline.records import SEVERITIES

MAX_SUMMARY_CHARS: Final = 300
"""Maximum summary length in characters. A longer summary is cut to it, not rejected."""

RESPONSE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "summary": {"type": "string", "maxLength": MAX_SUMMARY_CHARS},
    },
    "required": ["severity", "summary"],
    "additionalProperties": False,
}
"""JSON schema that constrains local generation and documents the expected output."""


class InvalidModelOutputError(ValueError):
    """Raised when model text does not contain a valid triage verdict."""


@dataclass(frozen=True)
class Verdict:
    """Severity and one-paragraph summary parsed from the model output."""

    severity: str
    summary: str


def parse_verdict(text: str) -> Verdict:
    """Parse the first JSON object with a "severity" key in `text` into a Verdict.

    Models served without a grammar often wrap the JSON in a Markdown fence or
    add a sentence before it, so the parser scans for decodable objects
    instead of requiring the whole text to be JSON. Severity is matched without
    regard to case and surrounding spaces.

    Raises:
        InvalidModelOutputError: no JSON object, a missing or non-string field, or a
            severity outside SEVERITIES. The message quotes the start of the text.
    """
    payload = _first_json_object(text)
    if payload is None:
        raise InvalidModelOutputError(f"model output contains no JSON object: {_excerpt(text)}")

    severity = payload.get("severity")
    summary = payload.get("summary")
    if not isinstance(severity, str):
        raise InvalidModelOutputError(
            f"model output has no string 'severity' field: {_excerpt(text)}"
        )
    if not isinstance(summary, str):
        raise InvalidModelOutputError(
            f"model output has no string 'summary' field: {_excerpt(text)}"
        )

    normalized = severity.strip().lower()
    if normalized not in SEVERITIES:
        raise InvalidModelOutputError(
            f"model output has severity {severity!r}; expected one of {', '.join(SEVERITIES)}"
        )

    cleaned = " ".join(summary.split())
    if not cleaned:
        raise InvalidModelOutputError(f"model output has an empty 'summary': {_excerpt(text)}")
    return Verdict(severity=normalized, summary=cleaned[:MAX_SUMMARY_CHARS])


def _first_json_object(text: str) -> dict[str, Any] | None:
    """Return the first JSON object in `text` with a "severity" key, else the first object."""
    # strict=False accepts raw line breaks inside strings, which models write.
    decoder = json.JSONDecoder(strict=False)
    first: dict[str, Any] | None = None
    start = text.find("{")
    while start != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            if "severity" in value:
                return value
            first = first or value
        start = text.find("{", end)
    return first


def _excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")
