"""Tests for parsing the model's triage verdict."""

from __future__ import annotations

import pytest

from pipeline.triage.verdict import (
    MAX_SUMMARY_CHARS,
    InvalidModelOutputError,
    Verdict,
    parse_verdict,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"severity": "high", "summary": "amount 50x baseline"}',
            Verdict("high", "amount 50x baseline"),
        ),
        (
            'Here is the triage:\n```json\n{"severity": "Critical", "summary": "cpu pegged"}\n```',
            Verdict("critical", "cpu pegged"),
        ),
        ('{"severity": " low ", "summary": "  two\n lines  "}', Verdict("low", "two lines")),
        (
            '{"note": 1} {"severity": "medium", "summary": "second object"}',
            Verdict("medium", "second object"),
        ),
        ('[1, 2] {"severity": "low", "summary": "after a list"}', Verdict("low", "after a list")),
        ('{ broken {"severity": "low", "summary": "after junk"}', Verdict("low", "after junk")),
    ],
)
def test_parse_accepts(text, expected):
    assert parse_verdict(text) == expected


def test_parse_cuts_long_summary():
    verdict = parse_verdict('{"severity": "low", "summary": "' + "s" * 1000 + '"}')
    assert len(verdict.summary) == MAX_SUMMARY_CHARS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "contains no JSON object"),
        ("The event looks bad.", "contains no JSON object"),
        ('{"severity": "high"', "contains no JSON object"),
        ('{"summary": "x"}', "no string 'severity' field"),
        ('{"severity": 3, "summary": "x"}', "no string 'severity' field"),
        ('{"severity": "high"}', "no string 'summary' field"),
        ('{"severity": "urgent", "summary": "x"}', "severity 'urgent'; expected one of low"),
        ('{"severity": "high", "summary": "   "}', "empty 'summary'"),
    ],
)
def test_parse_rejects(text, message):
    with pytest.raises(InvalidModelOutputError, match=message):
        parse_verdict(text)
