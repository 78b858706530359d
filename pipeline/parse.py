"""Beam stage that parses raw payloads into timestamped Events and dead letters."""

# Beam's DoFn and metric methods carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import apache_beam as beam
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import DoOutputsTuple, PCollection, TaggedOutput
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from pipeline import metrics
from pipeline.coders import to_micros
from pipeline.contract import parse_or_dead_letter
from pipeline.records import DeadLetter

EVENTS: Final = "events"
DEAD_LETTERS: Final = "dead_letters"


class _ParseDoFn(beam.DoFn):  # type: ignore[misc]
    def __init__(self) -> None:
        self._events_in = Metrics.counter(metrics.NAMESPACE, metrics.EVENTS_IN)
        self._invalid = Metrics.counter(metrics.NAMESPACE, metrics.INVALID)

    def process(self, record: bytes | str | DeadLetter) -> Iterator[Any]:
        self._events_in.inc()
        # A reader may already have rejected the record (e.g. a malformed CSV row).
        result = record if isinstance(record, DeadLetter) else parse_or_dead_letter(record)
        if isinstance(result, DeadLetter):
            self._invalid.inc()
            yield TaggedOutput(DEAD_LETTERS, result)
            return
        # Downstream timers work in event time, so the element carries the payload's time.
        yield TimestampedValue(result, Timestamp(micros=to_micros(result.event_time)))


class ParseEvents(beam.PTransform[PCollection[Any], DoOutputsTuple]):  # type: ignore[misc]
    """Parse payloads (bytes or str, or a DeadLetter from a reader) under the event contract.

    Outputs (tags): EVENTS, each valid Event timestamped with its event_time;
    DEAD_LETTERS, a DeadLetter (stage "parse", or the reader's stage) per invalid record.
    """

    def expand(self, records: PCollection[Any]) -> DoOutputsTuple:
        outputs: DoOutputsTuple = records | "Parse" >> beam.ParDo(_ParseDoFn()).with_outputs(
            DEAD_LETTERS, main=EVENTS
        )
        return outputs
