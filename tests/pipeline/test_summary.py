"""Tests for the run summary text: counts for one and for many, and an empty input."""

from collections import Counter
from dataclasses import replace
from pathlib import Path

from pipeline.labels import WindowEvaluation
from pipeline.summary import RunSummary, count_noun


def summary(entities: int, windows_not_in_input: int) -> RunSummary:
    return RunSummary(
        records_in=3,
        duplicates=0,
        scored=3,
        anomalies=0,
        entities=entities,
        input_dead_letters=Counter(),
        output_dead_letters=Counter(),
        triage_status=Counter(),
        windows=WindowEvaluation(
            windows=1,
            windows_detected=0,
            detections=0,
            detections_outside=0,
            keys_not_in_input=("cat/x.csv",),
            windows_not_in_input=windows_not_in_input,
        ),
    )


def test_count_noun_singular_and_plural():
    assert count_noun(1, "card") == "1 card"
    assert count_noun(0, "card") == "0 cards"
    assert count_noun(2, "card") == "2 cards"
    assert count_noun(1, "entity", "entities") == "1 entity"
    assert count_noun(3, "entity", "entities") == "3 entities"


def test_render_one_entity_one_window():
    lines = summary(entities=1, windows_not_in_input=1).render().splitlines()
    assert "  scored events:     3 (1 entity)" in lines
    assert "label keys not in this input: 1 with 1 window, not counted above: cat/x.csv" in lines


def test_render_many_entities_and_windows():
    lines = summary(entities=2, windows_not_in_input=0).render().splitlines()
    assert "  scored events:     3 (2 entities)" in lines
    assert "label keys not in this input: 1 with 0 windows, not counted above: cat/x.csv" in lines


def test_render_empty_input_names_path():
    empty = replace(summary(entities=0, windows_not_in_input=0), records_in=0, scored=0)
    lines = replace(empty, input_path=Path("in/empty.jsonl")).render().splitlines()
    assert lines[0] == "input in/empty.jsonl contains no records, so nothing was scored"
    assert "records read:        0" in lines
    assert empty.render().splitlines()[0] == "the input contains no records, so nothing was scored"


def test_render_non_empty_input_has_no_empty_note():
    text = replace(summary(entities=1, windows_not_in_input=0), input_path=Path("in.jsonl"))
    assert "contains no records" not in text.render()
