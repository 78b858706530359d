"""Tests for the run summary text: counts read correctly for one and for many."""

from collections import Counter

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
