"""Beam stage that parses raw payloads into timestamped Events and dead letters."""

# Beam's DoFn and metric methods carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from typing import Any, Final

import apache_beam as beam
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import DoOutputsTuple, PCollection, TaggedOutput
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from pipeline import metrics
from pipeline.contract import parse_or_dead_letter
from pipeline.records import DeadLetter, to_micros

EVENTS: Final = "events"
DEAD_LETTERS: Final = "dead_letters"


class _ParseDoFn(beam.DoFn):  # type: ignore[misc]
    def __init__(self, event_timestamps: bool) -> None:
        self._event_timestamps = event_timestamps
        self._events_in = Metrics.counter(metrics.NAMESPACE, metrics.EVENTS_IN)
        self._invalid = Metrics.counter(metrics.NAMESPACE, metrics.INVALID)

    def start_bundle(self) -> None:
        # Counted per bundle: a counter update per record would cost about as much as
        # checking the record's timestamp.
        self._records = 0

    def process(self, record: bytes | str | DeadLetter) -> tuple[Any]:
        self._records += 1
        # A reader may already have rejected the record (e.g. a malformed CSV row).
        result = record if isinstance(record, DeadLetter) else parse_or_dead_letter(record)
        if isinstance(result, DeadLetter):
            self._invalid.inc()
            return (TaggedOutput(DEAD_LETTERS, result),)
        if self._event_timestamps:
            # Downstream timers work in event time, so the element carries the payload's time.
            return (TimestampedValue(result, Timestamp(micros=to_micros(result.event_time))),)
        return (result,)

    def finish_bundle(self) -> None:
        self._events_in.inc(self._records)


class ParseEvents(beam.PTransform[PCollection[Any], DoOutputsTuple]):  # type: ignore[misc]
    """Parse payloads (bytes or str, or a DeadLetter from a reader) under the event contract.

    Outputs (tags): EVENTS, each valid Event, timestamped with its event_time when
    `event_timestamps` is set; DEAD_LETTERS, a DeadLetter (stage "parse", or the reader's
    stage) per invalid record.

    Streaming needs the event timestamps for its event-time timers. A bounded run scores
    each entity's group without timers, so it passes `event_timestamps=False` and saves
    the runner a window assignment per event.
    """

    def __init__(self, *, event_timestamps: bool = True) -> None:
        super().__init__()
        self._event_timestamps = event_timestamps

    def expand(self, records: PCollection[Any]) -> DoOutputsTuple:
        outputs: DoOutputsTuple = records | "Parse" >> beam.ParDo(
            _ParseDoFn(self._event_timestamps)
        ).with_outputs(DEAD_LETTERS, main=EVENTS)
        return outputs
