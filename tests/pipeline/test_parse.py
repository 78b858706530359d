"""Tests for the ParseEvents stage: element timestamps and the events_in counter."""

# Beam's pipeline APIs carry no annotations, and test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Timestamp

from pipeline import metrics
from pipeline.parse import DEAD_LETTERS, EVENTS, ParseEvents

PAYLOADS = [
    b'{"event_id": "e1", "entity_id": "a", "event_time": "2024-05-01T00:00:10Z",'
    b' "features": {"v": 1.0}}',
    b'{"event_id": "e2", "entity_id": "a", "event_time": "2024-05-01T00:00:20Z",'
    b' "features": {"v": 2.0}}',
    b"not json",
]


def stamp(event, timestamp=beam.DoFn.TimestampParam):
    return (event.event_id, timestamp)


@pytest.mark.parametrize(
    ("event_timestamps", "expected"),
    [
        (
            True,
            [
                ("e1", Timestamp.from_rfc3339("2024-05-01T00:00:10Z")),
                ("e2", Timestamp.from_rfc3339("2024-05-01T00:00:20Z")),
            ],
        ),
        (False, [("e1", MIN_TIMESTAMP), ("e2", MIN_TIMESTAMP)]),
    ],
    ids=["event-time", "input-time"],
)
def test_parse_events_timestamps(event_timestamps, expected):
    with beam.Pipeline() as pipeline:
        parsed = (
            pipeline
            | beam.Create(PAYLOADS)
            | beam.Map(lambda payload: TimestampedValue(payload, MIN_TIMESTAMP))
            | ParseEvents(event_timestamps=event_timestamps)
        )
        assert_that(parsed[EVENTS] | beam.Map(stamp), equal_to(expected))


def test_parse_events_counts_every_record():
    pipeline = beam.Pipeline()
    parsed = pipeline | beam.Create(PAYLOADS) | ParseEvents()
    assert_that(
        parsed[DEAD_LETTERS] | beam.Map(lambda letter: letter.error_code),
        equal_to(["invalid_json"]),
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace(metrics.NAMESPACE))
    totals = {item.key.metric.name: item.committed for item in counters["counters"]}
    assert totals[metrics.EVENTS_IN] == 3
    assert totals[metrics.INVALID] == 1
