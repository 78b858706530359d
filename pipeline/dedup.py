"""Beam stage that drops repeated event_ids within an event-time window, counting them."""

# Beam's DoFn and metric methods carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

import apache_beam as beam
from apache_beam.coders import BooleanCoder
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import DoOutputsTuple, PCollection, TaggedOutput
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Duration

from pipeline import metrics
from pipeline.records import Event

EVENTS: Final = "events"
DUPLICATES: Final = "duplicates"

_SEEN_SPEC = ReadModifyWriteStateSpec("seen", BooleanCoder())
_FORGET_SPEC = TimerSpec("forget", TimeDomain.WATERMARK)
# Beam recognizes state and timer parameters by these default values.
_SEEN = beam.DoFn.StateParam(_SEEN_SPEC)
_FORGET = beam.DoFn.TimerParam(_FORGET_SPEC)
_TIMESTAMP = beam.DoFn.TimestampParam


class _DeduplicateDoFn(beam.DoFn):  # type: ignore[misc]
    """Keyed by event_id: pass the first copy, tag later copies, forget after the window."""

    def __init__(self, window_seconds: float) -> None:
        self._window = Duration(micros=round(window_seconds * 1_000_000))
        self._duplicates = Metrics.counter(metrics.NAMESPACE, metrics.DUPLICATES)

    def process(
        self,
        element: tuple[str, Event],
        timestamp: Any = _TIMESTAMP,
        seen: Any = _SEEN,
        forget: Any = _FORGET,
    ) -> Iterator[Any]:
        event_id, event = element
        if seen.read():
            self._duplicates.inc()
            yield TaggedOutput(DUPLICATES, event_id)
            return
        seen.write(True)
        forget.set(timestamp + self._window)
        yield event

    @on_timer(_FORGET_SPEC)
    def on_forget(self, seen: Any = _SEEN) -> None:
        seen.clear()


class _FirstOfGroupDoFn(beam.DoFn):  # type: ignore[misc]
    """Bounded input: of all copies of one event_id, pass one and tag the rest."""

    def __init__(self) -> None:
        self._duplicates = Metrics.counter(metrics.NAMESPACE, metrics.DUPLICATES)

    def process(self, element: tuple[str, Iterable[Event]]) -> Iterator[Any]:
        event_id, copies = element
        ordered = list(copies)
        if len(ordered) > 1:
            # The grouping loses arrival order, so the kept copy is chosen by content.
            ordered.sort(key=lambda event: (event.event_time, event.to_json_line()))
        # Bounded scoring groups by entity without timers, so the event keeps the
        # GroupByKey's timestamp rather than its event_time.
        yield ordered[0]
        for _ in ordered[1:]:
            self._duplicates.inc()
            yield TaggedOutput(DUPLICATES, event_id)


class DeduplicateEvents(beam.PTransform[PCollection[Event], DoOutputsTuple]):  # type: ignore[misc]
    """Keep the first Event per event_id; later copies within the window are duplicates.

    Streaming: a stateful DoFn keyed by event_id. The window runs in event time from the
    first copy's event_time, and the state for an id is cleared when the watermark passes
    ``event_time + window_seconds``. This works on every runner. On Dataflow, Pub/Sub's id
    attribute also removes redeliveries before they reach the pipeline.

    Bounded input (`bounded_input=True`, local runs over files): a GroupByKey by event_id,
    because the DirectRunner handles per-key state for many keys slowly (about 4 ms per
    key on a 2-core machine). All copies of an id in the input count as duplicates
    whatever their time apart, and the copy kept is the one with the earliest event_time.

    Outputs (tags): EVENTS, the first copy of each event; DUPLICATES, the event_id of
    each later copy.
    """

    def __init__(self, window_seconds: float, *, bounded_input: bool = False) -> None:
        super().__init__()
        if window_seconds <= 0:
            raise ValueError(f"dedup window_seconds={window_seconds} must be positive")
        self._window_seconds = window_seconds
        self._bounded_input = bounded_input

    def expand(self, events: PCollection[Event]) -> DoOutputsTuple:
        keyed = events | "KeyByEventId" >> beam.Map(_key_by_event_id).with_output_types(
            tuple[str, Event]
        )
        if self._bounded_input:
            grouped = keyed | "GroupCopies" >> beam.GroupByKey()
            outputs: DoOutputsTuple = grouped | "KeepFirst" >> beam.ParDo(
                _FirstOfGroupDoFn()
            ).with_outputs(DUPLICATES, main=EVENTS)
            return outputs
        outputs = keyed | "DropRepeats" >> beam.ParDo(
            _DeduplicateDoFn(self._window_seconds)
        ).with_outputs(DUPLICATES, main=EVENTS)
        return outputs


def _key_by_event_id(event: Event) -> tuple[str, Event]:
    return (event.event_id, event)
