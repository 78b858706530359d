"""Tests for ordered stateful scoring: arrival order does not change scores, late events."""

# Beam's pipeline APIs carry no annotations, and test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import random
from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream as EventStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import FixedWindows, TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from pipeline.detector import Detector, DetectorConfig
from pipeline.records import Event
from pipeline.scoring import DEAD_LETTERS, DETECTIONS, SCORED, ScoreEvents, ScoringConfig

START = datetime(2024, 5, 1, tzinfo=UTC)
DETECTOR = DetectorConfig(warmup_events=5)


def make_events(entity_id, count, seed, spike_at=None):
    rng = random.Random(seed)
    events = []
    for index in range(count):
        value = 50.0 if index == spike_at else rng.gauss(10.0, 1.0)
        events.append(
            Event(
                event_id=f"{entity_id}-{index:03d}",
                entity_id=entity_id,
                event_time=START + timedelta(seconds=index),
                features={"v": value},
            )
        )
    return events


def expected_scores(events):
    """Scores from the plain detector, fed each entity's events in event-time order."""
    expected = []
    by_entity: dict[str, list[Event]] = {}
    for event in events:
        by_entity.setdefault(event.entity_id, []).append(event)
    for entity_events in by_entity.values():
        ordered = sorted(entity_events, key=lambda event: (event.event_time, event.event_id))
        scores = Detector(DETECTOR).score_series(
            [event.features for event in ordered], [event.event_time for event in ordered]
        )
        expected += [
            (event.event_id, round(score.anomaly_score, 9))
            for event, score in zip(ordered, scores, strict=True)
        ]
    return expected


def stamped(event):
    return TimestampedValue(event, Timestamp.from_utc_datetime(event.event_time))


def score_pairs(scored):
    return scored | beam.Map(lambda event: (event.event_id, round(event.anomaly_score, 9)))


@pytest.mark.parametrize("bounded_input", [True, False])
def test_shuffled_equals_sorted_bounded(bounded_input):
    events = make_events("a", 40, seed=1, spike_at=30) + make_events("b", 30, seed=2)
    shuffled = events[:]
    random.Random(9).shuffle(shuffled)
    config = ScoringConfig(detector=DETECTOR, bounded_input=bounded_input)
    with beam.Pipeline() as pipeline:
        outputs = (
            pipeline | beam.Create([stamped(event) for event in shuffled]) | ScoreEvents(config)
        )
        assert_that(score_pairs(outputs[SCORED]), equal_to(expected_scores(events)))
        assert_that(
            outputs[DETECTIONS] | "Ids" >> beam.Map(lambda detection: detection.event_id),
            equal_to(["a-030"]),
            label="detections",
        )


@pytest.mark.parametrize("bounded_input", [True, False])
def test_equal_times_ordered_by_event_id(bounded_input):
    # Ten events share each event_time, so only the event_id orders them.
    events = make_events("a", 40, seed=6, spike_at=33)
    tied = [
        Event(
            event.event_id, event.entity_id, START + timedelta(seconds=index // 10), event.features
        )
        for index, event in enumerate(events)
    ]
    shuffled = tied[:]
    random.Random(10).shuffle(shuffled)
    config = ScoringConfig(detector=DETECTOR, bounded_input=bounded_input)
    with beam.Pipeline() as pipeline:
        outputs = (
            pipeline | beam.Create([stamped(event) for event in shuffled]) | ScoreEvents(config)
        )
        assert_that(score_pairs(outputs[SCORED]), equal_to(expected_scores(tied)))


def streaming_options():
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return options


def test_shuffled_stream_equals_sorted_with_watermark():
    events = make_events("a", 40, seed=3, spike_at=25)
    rng = random.Random(4)
    stream = EventStream()
    for start in range(0, len(events), 10):
        chunk = events[start : start + 10]
        rng.shuffle(chunk)
        stream = stream.add_elements([stamped(event) for event in chunk])
        last = events[min(start + 9, len(events) - 1)]
        stream = stream.advance_watermark_to(Timestamp.from_utc_datetime(last.event_time))
    # On the DirectRunner, outputs of timers that fire only when the watermark jumps to
    # the end of time reach assert_that too late, so the last timers fire before that.
    last_due = Timestamp.from_utc_datetime(events[-1].event_time) + 11
    stream = stream.advance_watermark_to(last_due).advance_watermark_to_infinity()

    config = ScoringConfig(detector=DETECTOR, allowed_lateness_seconds=10.0)
    with beam.Pipeline(options=streaming_options()) as pipeline:
        outputs = pipeline | stream | ScoreEvents(config)
        assert_that(score_pairs(outputs[SCORED]), equal_to(expected_scores(events)))


@pytest.mark.parametrize("streaming", [True, False])
def test_detection_keeps_event_fields(streaming):
    events = make_events("a", 30, seed=7, spike_at=25)
    spike = events[25]
    events[25] = Event(
        spike.event_id,
        spike.entity_id,
        spike.event_time,
        spike.features,
        attributes={"city": "Munich", "online": True, "n": 3},
        message="large purchase",
        context={"profile": {"segment": "gold"}},
    )
    last_due = Timestamp.from_utc_datetime(events[-1].event_time) + 11
    stream = (
        EventStream()
        .add_elements([stamped(event) for event in events])
        .advance_watermark_to(last_due)
        .advance_watermark_to_infinity()
    )
    config = ScoringConfig(detector=DETECTOR, bounded_input=not streaming)
    options = streaming_options() if streaming else PipelineOptions()
    with beam.Pipeline(options=options) as pipeline:
        source = stream if streaming else beam.Create([stamped(event) for event in events])
        outputs = pipeline | source | ScoreEvents(config)
        assert_that(
            outputs[DETECTIONS]
            | beam.Map(
                lambda detection: (
                    detection.event_id,
                    detection.event_time,
                    dict(detection.features),
                    dict(detection.attributes),
                    detection.message,
                    dict(detection.context),
                )
            ),
            equal_to(
                [
                    (
                        spike.event_id,
                        spike.event_time,
                        dict(spike.features),
                        {"city": "Munich", "online": True, "n": 3},
                        "large purchase",
                        {"profile": {"segment": "gold"}},
                    )
                ]
            ),
        )


def test_late_event_is_dead_lettered():
    events = make_events("a", 12, seed=5)
    late = Event("a-late", "a", START + timedelta(seconds=3), {"v": 10.0})
    after_release = Timestamp.from_utc_datetime(events[-1].event_time) + 30
    stream = (
        EventStream()
        .add_elements([stamped(event) for event in events])
        .advance_watermark_to(after_release)
        .add_elements([stamped(late)])
        .advance_watermark_to(after_release + 30)
        .advance_watermark_to_infinity()
    )
    config = ScoringConfig(detector=DETECTOR, allowed_lateness_seconds=5.0)
    with beam.Pipeline(options=streaming_options()) as pipeline:
        outputs = pipeline | stream | ScoreEvents(config)
        assert_that(
            outputs[DEAD_LETTERS]
            | beam.Map(lambda letter: (letter.event_id, letter.error_code, letter.stage)),
            equal_to([("a-late", "late_event", "score")]),
        )
        assert_that(
            outputs[SCORED] | "Ids" >> beam.Map(lambda event: event.event_id),
            equal_to([event.event_id for event in events]),
            label="scored",
        )


def test_config_rejects_negative_lateness():
    with pytest.raises(ValueError, match="allowed_lateness_seconds=-1"):
        ScoringConfig(allowed_lateness_seconds=-1)


def test_bounded_scoring_rejects_windowed_input():
    with (
        beam.Pipeline() as pipeline,
        pytest.raises(ValueError, match="needs events in the global window"),
    ):
        _ = (
            pipeline
            | beam.Create([stamped(event) for event in make_events("a", 3, seed=1)])
            | beam.WindowInto(FixedWindows(60))
            | ScoreEvents(ScoringConfig(bounded_input=True))
        )
