"""Tests for the synthetic stream, the label scoring of the demo, and the demo itself."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import json

import pytest

from pipeline import demo
from pipeline.contract import parse_or_dead_letter
from pipeline.detector import Detector
from pipeline.records import DeadLetter
from pipeline.synthetic import KINDS, Incident, SyntheticStream, generate


def test_generate_is_deterministic():
    assert generate(seed=3).lines == generate(seed=3).lines
    assert generate(seed=3).lines != generate(seed=4).lines


def test_stream_counts_add_up():
    stream = generate(seed=3, cards=6, days=3)
    parsed = [parse_or_dead_letter(line) for line in stream.lines]
    invalid = [item for item in parsed if isinstance(item, DeadLetter)]
    valid_ids = [item.event_id for item in parsed if not isinstance(item, DeadLetter)]
    assert len(invalid) == stream.invalid
    assert len(valid_ids) - len(set(valid_ids)) == stream.duplicates
    assert len(set(valid_ids)) == stream.valid_events


def test_describe_stream_counts():
    stream = generate(seed=3, cards=6, days=3)
    assert demo.describe_stream(stream) == (
        f"synthetic stream: {stream.valid_events} transactions for 6 cards, "
        f"12 redelivered duplicates, 5 invalid payloads, {len(stream.incidents)} "
        "injected incidents"
    )


def test_describe_stream_singular_counts():
    stream = SyntheticStream(
        lines=(),
        incidents=(Incident("i-1", "burst", "card-001", ("card-001-tx-0001",)),),
        valid_events=1,
        duplicates=1,
        invalid=1,
        cards=1,
    )
    assert demo.describe_stream(stream) == (
        "synthetic stream: 1 transaction for 1 card, 1 redelivered duplicate, "
        "1 invalid payload, 1 injected incident"
    )


@pytest.mark.parametrize(
    ("score", "counts"),
    [
        (
            demo.LabelScore(1, 1, 1, 1, 1),
            "(1 of 1 detection is injected fraud), incident recall 100% (1 of 1)",
        ),
        (
            demo.LabelScore(26, 1, 45, 12, 1),
            "(1 of 26 detections is injected fraud), incident recall 8% (1 of 12)",
        ),
        (
            demo.LabelScore(26, 20, 45, 12, 12),
            "(20 of 26 detections are injected fraud), incident recall 100% (12 of 12)",
        ),
        (
            demo.LabelScore(0, 0, 45, 12, 0),
            "(0 of 0 detections are injected fraud), incident recall 0% (0 of 12)",
        ),
    ],
)
def test_describe_labels_counts(score, counts):
    assert counts in demo.describe_labels(score)


def test_every_kind_is_injected_after_warmup():
    stream = generate(seed=3, cards=6, days=3)
    assert {incident.kind for incident in stream.incidents} == set(KINDS)
    for incident in stream.incidents:
        first_index = int(incident.event_ids[0].rsplit("-", 1)[1])
        assert first_index >= 20


def test_burst_events_have_rising_counts():
    stream = generate(seed=3, cards=6, days=3)
    burst = next(incident for incident in stream.incidents if incident.kind == "burst")
    counts = [stream.features_by_event[e]["tx_last_hour"] for e in burst.event_ids[:6]]
    assert counts == sorted(counts)
    assert counts[-1] >= 5


def events_by_card(stream):
    cards: dict[str, list[str]] = {}
    for event_id in sorted(stream.event_times, key=lambda e: (stream.event_times[e], e)):
        cards.setdefault(event_id.rsplit("-tx-", 1)[0], []).append(event_id)
    return cards


def test_purchases_inside_incident_are_labelled():
    # The demo's stream has a genuine purchase in the middle of a burst.
    stream = generate()
    cards = events_by_card(stream)
    for incident in stream.incidents:
        card_events = cards[incident.entity_id]
        first = card_events.index(incident.event_ids[0])
        last = card_events.index(incident.event_ids[-1])
        assert set(card_events[first : last + 1]) <= set(incident.event_ids)


def test_detector_catches_every_incident():
    stream = generate()
    detector = Detector()
    detected = set()
    for event_ids in events_by_card(stream).values():
        scores = detector.score_series(
            [stream.features_by_event[event_id] for event_id in event_ids],
            [stream.event_times[event_id] for event_id in event_ids],
        )
        detected |= {e for e, score in zip(event_ids, scores, strict=True) if score.is_anomaly}
    labelled = stream.labelled_event_ids()
    # Measured with the defaults: 26 detections, 20 of them labelled, all 12 incidents.
    assert all(detected & set(incident.event_ids) for incident in stream.incidents)
    assert len(detected & labelled) / len(detected) >= 0.7


@pytest.mark.slow
def test_demo_runs_without_model(tmp_path, capsys):
    assert demo.main(["--output", str(tmp_path), "--triage", "none"]) == 0
    output = capsys.readouterr().out
    assert "every record in exactly one place: yes" in output
    assert "incident recall" in output
    assert (tmp_path / "chart.png").stat().st_size > 10_000
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert len(labels) == 12


def test_demo_output_is_file_exits_2(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("")
    assert demo.main(["--output", str(path), "--triage", "none"]) == 2
    error = capsys.readouterr().err
    assert f"output {path} exists and is not a directory" in error
    assert "choose a directory you can write" in error
