"""Tests for deduplication by event_id, streaming (stateful) and bounded (grouped)."""

# Beam's pipeline APIs carry no annotations, and test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream as EventStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from pipeline.dedup import DUPLICATES, EVENTS, DeduplicateEvents
from pipeline.records import Event

START = datetime(2024, 5, 1, tzinfo=UTC)


def event(event_id, seconds=0, value=1.0):
    return Event(event_id, "card-1", START + timedelta(seconds=seconds), {"v": value})


def stamped(item):
    return TimestampedValue(item, Timestamp.from_utc_datetime(item.event_time))


@pytest.mark.parametrize("bounded_input", [True, False])
def test_repeats_are_counted_once_each(bounded_input):
    events = [event("a"), event("b", 1), event("a"), event("c", 2), event("a"), event("b", 1)]
    with beam.Pipeline() as pipeline:
        outputs = (
            pipeline
            | beam.Create([stamped(item) for item in events])
            | DeduplicateEvents(600, bounded_input=bounded_input)
        )
        assert_that(
            outputs[EVENTS] | beam.Map(lambda item: item.event_id), equal_to(["a", "b", "c"])
        )
        assert_that(outputs[DUPLICATES], equal_to(["a", "a", "b"]), label="duplicates")


def test_bounded_keeps_earliest_copy():
    with beam.Pipeline() as pipeline:
        outputs = (
            pipeline
            | beam.Create([stamped(event("a", 5, 2.0)), stamped(event("a", 1, 1.0))])
            | DeduplicateEvents(600, bounded_input=True)
        )
        assert_that(outputs[EVENTS] | beam.Map(lambda item: item.features["v"]), equal_to([1.0]))


def test_streaming_forgets_after_window():
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    first = event("a", 0)
    stream = (
        EventStream()
        .add_elements([stamped(first), stamped(event("a", 0))])
        .advance_watermark_to(Timestamp.from_utc_datetime(START) + 120)
        .add_elements([stamped(event("a", 0))])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=options) as pipeline:
        outputs = pipeline | stream | DeduplicateEvents(60)
        assert_that(outputs[EVENTS] | beam.Map(lambda item: item.event_id), equal_to(["a", "a"]))
        assert_that(outputs[DUPLICATES], equal_to(["a"]), label="duplicates")


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window_seconds=0"):
        DeduplicateEvents(0)
