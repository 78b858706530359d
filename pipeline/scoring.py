"""Stateful Beam scoring: buffer each entity's events, release them in event-time order, score.

Scores depend on each entity's history, so they must not depend on the order in which
Pub/Sub delivers events. The DoFn buffers an entity's events in a bag and sets an
event-time timer at ``event_time + allowed_lateness`` (one timer per distinct time). When
the watermark passes that time, the timer releases every buffered event whose
``event_time + allowed_lateness`` it has reached, sorted by (event_time, event_id), and
scores them in that order.

Latency cost: an event is scored once the watermark passes ``event_time +
allowed_lateness``. Each event therefore waits for the allowed lateness (default 10 s)
plus the watermark's own lag behind real time. On Dataflow with Pub/Sub that lag is
typically a few seconds, and more when the backlog grows.

Late events: an event whose event_time is before the last event already scored for its
entity cannot be placed in order. Scoring it would make the results depend on arrival
order, so it goes to the dead letter with code ``late_event`` and can be replayed.

Bounded input (a batch run over files) takes another path with the same order and the
same scores. Each bundle first collects its events per entity into columns
(pipeline.columns), so the GroupByKey shuffles one element per entity and bundle
instead of one per event. After
the GroupByKey, each entity's events are sorted once and scored in one pass of the
detector. Every event is then in its entity's group, so none is late, and no
per-element state access is needed.
"""

# Beam's DoFn and metric methods carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import apache_beam as beam
from apache_beam.coders import FastPrimitivesCoder, PickleCoder, VarIntCoder
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import DoOutputsTuple, PCollection, TaggedOutput
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from pipeline import columns, metrics
from pipeline.coders import EventTuple, event_to_tuple
from pipeline.columns import EntityColumns
from pipeline.detector import (
    Detector,
    DetectorConfig,
    FeatureState,
    Score,
    decode_state,
    encode_state,
)
from pipeline.records import (
    BaselineStat,
    DeadLetter,
    Detection,
    Event,
    ScoredEvent,
    format_timestamp,
    from_micros,
    to_micros,
    utc_now,
)

_LOG = logging.getLogger(__name__)

SCORED: Final = "scored"
DETECTIONS: Final = "detections"
DEAD_LETTERS: Final = "dead_letters"
STAGE: Final = "score"
LATE_EVENT: Final = "late_event"

_MICROS = 1_000_000
_MICROS_PER_MILLI = 1_000


@dataclass(frozen=True)
class ScoringConfig:
    """Settings of the ordered scoring stage.

    `bounded_input` is True for a batch run over files. There all of an entity's events
    are known before any is scored, so the stage groups them by entity and scores each
    group in event-time order, without state or timers. Streaming sets one timer per
    distinct due time, and each firing reads the buffer, which is fine for the few
    events buffered in a stream but quadratic over a whole file.
    """

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    allowed_lateness_seconds: float = 10.0
    entity_ttl_seconds: float = 7 * 24 * 3600.0
    bounded_input: bool = False

    def __post_init__(self) -> None:
        if self.allowed_lateness_seconds < 0:
            raise ValueError(
                f"allowed_lateness_seconds={self.allowed_lateness_seconds} must not be negative"
            )
        if self.entity_ttl_seconds <= 0:
            raise ValueError(f"entity_ttl_seconds={self.entity_ttl_seconds} must be positive")


# A buffered event: its time in microseconds, then the event in EventCoder's tuple form.
# Plain tuples keep the state small and cheap for the runner's state cache to size.
_Buffered = tuple[int, EventTuple]


def _buffered(event: Event) -> _Buffered:
    return (to_micros(event.event_time), event_to_tuple(event))


def _buffered_order(item: _Buffered) -> tuple[int, str]:
    return (item[0], item[1][0])


_BUFFER_SPEC = BagStateSpec("buffer", FastPrimitivesCoder())
_DETECTOR_SPEC = ReadModifyWriteStateSpec("detector_state", PickleCoder())
_LAST_SCORED_SPEC = ReadModifyWriteStateSpec("last_scored_micros", VarIntCoder())
_RELEASE_AT_SPEC = ReadModifyWriteStateSpec("release_at_micros", VarIntCoder())
_RELEASE_SPEC = TimerSpec("release", TimeDomain.WATERMARK)
_EXPIRE_SPEC = TimerSpec("expire", TimeDomain.WATERMARK)

# Beam recognizes state and timer parameters by these default values.
_BUFFER = beam.DoFn.StateParam(_BUFFER_SPEC)
_DETECTOR_STATE = beam.DoFn.StateParam(_DETECTOR_SPEC)
_LAST_SCORED = beam.DoFn.StateParam(_LAST_SCORED_SPEC)
_RELEASE_AT = beam.DoFn.StateParam(_RELEASE_AT_SPEC)
_RELEASE = beam.DoFn.TimerParam(_RELEASE_SPEC)
_EXPIRE = beam.DoFn.TimerParam(_EXPIRE_SPEC)
_TIMESTAMP = beam.DoFn.TimestampParam
_KEY = beam.DoFn.KeyParam


def detection_for(event: Event, score: Score, detector: str, detected_at: datetime) -> Detection:
    """Return the Detection of an anomalous event, with its baseline from `score`."""
    return Detection(
        event_id=event.event_id,
        entity_id=event.entity_id,
        event_time=event.event_time,
        anomaly_score=score.anomaly_score,
        detector=detector,
        features=dict(event.features),
        attributes=dict(event.attributes),
        message=event.message,
        context=dict(event.context),
        baseline=tuple(
            BaselineStat(
                feature=feature.feature,
                value=feature.value,
                mean=feature.mean,
                std=feature.std,
                count=feature.count,
                score=feature.score,
            )
            for feature in score.features
        ),
        triage=None,
        detected_at=detected_at,
    )


class _ScoreOutputs:
    """The records and metrics for scored events, shared by both scoring DoFns."""

    def __init__(self, config: ScoringConfig) -> None:
        self.detector = Detector(config.detector)
        self._allowed_lateness_seconds = config.allowed_lateness_seconds
        self._scored = Metrics.counter(metrics.NAMESPACE, metrics.SCORED)
        self._anomalies = Metrics.counter(metrics.NAMESPACE, metrics.ANOMALIES)
        self._untracked = Metrics.counter(metrics.NAMESPACE, metrics.UNTRACKED_FEATURES)
        self._lag = Metrics.distribution(metrics.NAMESPACE, metrics.EVENT_TIME_LAG_MS)
        # Over files the lag would measure the age of the data, not the pipeline's delay.
        self._measure_lag = not config.bounded_input

    def score_in_order(
        self, state: dict[str, FeatureState], entity_id: str, ordered: EntityColumns
    ) -> Generator[Any, None, dict[str, FeatureState]]:
        """Score one entity's events, in event-time order; yield the outputs, return the state."""
        event_ids, times, features, _ = ordered
        scores, state = self.detector.score_events(state, features, times)
        now = utc_now()
        now_micros = to_micros(now)
        name = self.detector.name
        anomaly_scores = scores.anomaly_scores
        anomalies = scores.anomalies
        if self._measure_lag:
            for micros in times:
                self._lag.update((now_micros - micros) // _MICROS_PER_MILLI)
        for index, micros in enumerate(times):
            event_time = from_micros(micros)
            yield ScoredEvent(
                event_id=event_ids[index],
                entity_id=entity_id,
                event_time=event_time,
                anomaly_score=anomaly_scores[index],
                is_anomaly=anomalies[index],
                detector=name,
                scored_at=now,
            )
            if anomalies[index]:
                self._anomalies.inc()
                event = columns.event_at(ordered, entity_id, index)
                detection = detection_for(event, scores.score(index), name, now)
                yield TaggedOutput(DETECTIONS, detection)
        self._scored.inc(len(times))
        if scores.untracked_features:
            self._untracked.inc(scores.untracked_features)
        return state

    def late_dead_letter(self, event: Event, frontier_micros: int) -> DeadLetter:
        """Return the dead letter of an event older than its entity's last scored event."""
        frontier = Timestamp(micros=frontier_micros).to_utc_datetime(has_tz=True)
        message = (
            f"event_time {format_timestamp(event.event_time)} of entity {event.entity_id!r} "
            f"is before {format_timestamp(frontier)}, the last event already scored for "
            "this entity, so it cannot be scored in order. It arrived more than "
            f"allowed_lateness_seconds={self._allowed_lateness_seconds:g} behind "
            "the watermark; raise that option or replay the event"
        )
        return DeadLetter.for_payload(
            event.to_json_line(),
            error_code=LATE_EVENT,
            error_message=message,
            stage=STAGE,
            event_id=event.event_id,
        )


class OrderedScoringDoFn(beam.DoFn):  # type: ignore[misc]
    """Score (entity_id, Event) pairs per entity in event-time order (see the module doc).

    State per entity: the bag of events waiting for release, the encoded detector state,
    the event time of the last scored event, and the time the release timer is set to.
    """

    def __init__(self, config: ScoringConfig) -> None:
        self._config = config
        self._lateness = round(config.allowed_lateness_seconds * _MICROS)
        self._ttl = round(config.entity_ttl_seconds * _MICROS)
        self._outputs = _ScoreOutputs(config)
        self._late = Metrics.counter(metrics.NAMESPACE, metrics.LATE)
        self._expired = Metrics.counter(metrics.NAMESPACE, metrics.ENTITIES_EXPIRED)

    def process(
        self,
        element: tuple[str, Event],
        buffer: Any = _BUFFER,
        last_scored: Any = _LAST_SCORED,
        release_at: Any = _RELEASE_AT,
        release: Any = _RELEASE,
    ) -> Iterator[Any]:
        _, event = element
        item = _buffered(event)
        event_micros = item[0]
        frontier = last_scored.read()
        if frontier is not None and event_micros < frontier:
            self._late.inc()
            yield TaggedOutput(DEAD_LETTERS, self._outputs.late_dead_letter(event, frontier))
            return

        buffer.add(item)
        due = event_micros + self._lateness
        if self._config.bounded_input:
            # One timer is enough: it fires only after all input is read.
            if release_at.read() is None:
                release.set(Timestamp(micros=due))
                release_at.write(due)
            return
        # One timer per due time, all set here rather than from the timer callback, so
        # each fires even when the watermark jumps to the end of time (drain, tests).
        release.set(Timestamp(micros=due), dynamic_timer_tag=str(due))

    @on_timer(_RELEASE_SPEC)
    def on_release(  # noqa: PLR0917 (Beam passes state and timers positionally)
        self,
        fired_at: Any = _TIMESTAMP,
        buffer: Any = _BUFFER,
        detector_state: Any = _DETECTOR_STATE,
        last_scored: Any = _LAST_SCORED,
        release_at: Any = _RELEASE_AT,
        expire: Any = _EXPIRE,
    ) -> Iterator[Any]:
        pending: list[_Buffered] = sorted(buffer.read(), key=_buffered_order)
        if self._config.bounded_input:
            ready, waiting = pending, []
            release_at.clear()
        else:
            horizon = int(fired_at.micros) - self._lateness
            ready = [item for item in pending if item[0] <= horizon]
            waiting = [item for item in pending if item[0] > horizon]
        if not ready:
            return
        buffer.clear()
        for item in waiting:
            buffer.add(item)

        state = decode_state(detector_state.read())
        entity_id = ready[0][1][1]
        state = yield from self._outputs.score_in_order(
            state, entity_id, columns.from_buffered(ready)
        )
        detector_state.write(encode_state(state))
        newest = ready[-1][0]
        last_scored.write(newest)
        expire.set(Timestamp(micros=newest + self._ttl))

    @on_timer(_EXPIRE_SPEC)
    def on_expire(
        self,
        fired_at: Any = _TIMESTAMP,
        key: Any = _KEY,
        buffer: Any = _BUFFER,
        detector_state: Any = _DETECTOR_STATE,
        last_scored: Any = _LAST_SCORED,
    ) -> None:
        newest = last_scored.read()
        if newest is None or any(True for _ in buffer.read()):
            return
        if newest + self._ttl <= int(fired_at.micros):
            detector_state.clear()
            last_scored.clear()
            self._expired.inc()
            _LOG.debug("cleared detector state of idle entity %s", key)


class _GroupInBundleDoFn(beam.DoFn):  # type: ignore[misc]
    """Bounded input: collect each entity's events of a bundle into (entity_id, columns).

    The GroupByKey after it then moves one element per entity and bundle. The bundle's
    events stay in memory until the bundle ends, as the DirectRunner's GroupByKey keeps
    them anyway. Bounded input is in the global window (ScoreEvents checks this), so the
    columns are emitted there.
    """

    def start_bundle(self) -> None:
        self._groups: dict[str, EntityColumns] = {}

    def process(self, event: Event) -> None:
        group = self._groups.get(event.entity_id)
        if group is None:
            group = self._groups[event.entity_id] = columns.new_columns()
        columns.append_for_shuffle(group, event)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        groups, self._groups = self._groups, {}
        for entity_id, group in groups.items():
            yield GlobalWindows.windowed_value((entity_id, group))


class _ScoreEntityGroupDoFn(beam.DoFn):  # type: ignore[misc]
    """Bounded input: score one entity's grouped events in event-time order."""

    def __init__(self, config: ScoringConfig) -> None:
        self._outputs = _ScoreOutputs(config)

    def process(self, element: tuple[str, Iterable[EntityColumns]]) -> Iterator[Any]:
        entity_id, chunks = element
        return self._outputs.score_in_order({}, entity_id, columns.merge_sorted(chunks))


class ScoreEvents(beam.PTransform[PCollection[Event], DoOutputsTuple]):  # type: ignore[misc]
    """Score events per entity in event-time order.

    Outputs (tags): SCORED, every scored event once as ScoredEvent; DETECTIONS, a
    Detection for each anomalous one; DEAD_LETTERS, late events (never any with
    `bounded_input`, where every event of an entity is scored in one pass).
    """

    def __init__(self, config: ScoringConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, events: PCollection[Event]) -> DoOutputsTuple:
        scoring: beam.DoFn
        keyed: PCollection[Any]
        if self._config.bounded_input:
            if not isinstance(events.windowing.windowfn, GlobalWindows):
                raise ValueError(
                    "ScoreEvents with bounded_input=True needs events in the global window, "
                    f"but they are windowed by {events.windowing.windowfn!r}; score them "
                    "before windowing, or set bounded_input=False"
                )
            keyed = (
                events
                | "GroupInBundle"
                >> beam.ParDo(_GroupInBundleDoFn()).with_output_types(tuple[str, tuple[Any, ...]])
                | "GroupByEntity" >> beam.GroupByKey()
            )
            scoring = _ScoreEntityGroupDoFn(self._config)
        else:
            keyed = events | "KeyByEntity" >> beam.Map(_key_by_entity).with_output_types(
                tuple[str, Event]
            )
            scoring = OrderedScoringDoFn(self._config)
        outputs: DoOutputsTuple = keyed | "ScoreInOrder" >> beam.ParDo(scoring).with_outputs(
            DETECTIONS, DEAD_LETTERS, main=SCORED
        )
        return outputs


def _key_by_entity(event: Event) -> tuple[str, Event]:
    return (event.entity_id, event)
