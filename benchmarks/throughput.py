"""Pipeline rows of the benchmark: the project's stages, Beam's ZScore and a pass-through."""

# Beam transform constructors carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import apache_beam as beam
from apache_beam.coders import BytesCoder
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.ml.anomaly.detectors.zscore import ZScore
from apache_beam.ml.anomaly.transforms import AnomalyDetection
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import PCollection, Row, TaggedOutput
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from benchmarks.memory import max_rss_mib
from pipeline import parse, scoring
from pipeline.graph import CoreSettings, build_core
from pipeline.parse import ParseEvents
from pipeline.scoring import ScoreEvents, ScoringConfig
from pipeline.triage import TriageConfig

PASSTHROUGH: Final = "passthrough"
GROUPING: Final = "grouping"
BEAM_ZSCORE: Final = "beam_zscore"
PARSE_SCORE: Final = "parse_score"
CORE: Final = "core"
STAGES: Final = (PASSTHROUGH, GROUPING, BEAM_ZSCORE, PARSE_SCORE, CORE)

STAGE_LABELS: Final = {
    PASSTHROUGH: "pass-through: read, json.loads",
    GROUPING: "reference: json.loads, group, sort; no checks or scores",
    BEAM_ZSCORE: "Beam AnomalyDetection(ZScore) per entity",
    PARSE_SCORE: "project: ParseEvents + ScoreEvents",
    CORE: "project: build_core (parse, dedup, score), triage none",
}

_NAMESPACE: Final = "benchmark"
_OUTPUTS: Final = "outputs"
_SET_ASIDE: Final = "set_aside"
_VALID: Final = "valid"
_INVALID: Final = "invalid"


def runner_options() -> PipelineOptions:
    """Return the options of every pipeline row, the runner that pipeline.run_local uses."""
    # NOTE: copied from pipeline.run_local.run, which builds its options inline. If that
    # run moves to another runner or worker count, change this to match.
    # flags=[] keeps Beam from parsing this process's command line as pipeline options.
    return PipelineOptions(flags=[], runner="DirectRunner", direct_num_workers=1)


class _CountOutputs(beam.DoFn):  # type: ignore[misc]
    """Count the elements that reach the end of a row, so every row ends in the same sink."""

    def __init__(self, name: str) -> None:
        self._outputs = Metrics.counter(_NAMESPACE, name)

    def process(self, element: Any) -> Iterator[Any]:
        self._outputs.inc()
        return iter(())


def _read(pipeline: beam.Pipeline, path: Path) -> PCollection[bytes]:
    # The same reader as pipeline.run_local uses for a JSON Lines file.
    records: PCollection[bytes] = (
        pipeline
        | "Read" >> beam.io.ReadFromText(str(path), coder=BytesCoder())
        | "DropBlankLines" >> beam.Filter(lambda line: bool(line.strip()))
    )
    return records


def _load_json(line: bytes) -> Iterator[Any]:
    try:
        yield json.loads(line)
    except ValueError:
        yield TaggedOutput(_INVALID, line)


def _passthrough(records: PCollection[bytes], feature: str) -> list[PCollection[Any]]:
    loaded = records | "LoadJson" >> beam.FlatMap(_load_json).with_outputs(_INVALID, main=_VALID)
    return [loaded[_VALID], loaded[_INVALID]]


class _GroupLinesInBundle(beam.DoFn):  # type: ignore[misc]
    """Collect each entity's (event_time, event_id) pairs of a bundle, as ScoreEvents does."""

    def start_bundle(self) -> None:
        self._groups: dict[Any, list[tuple[Any, Any]]] = {}

    def process(self, line: bytes) -> Iterator[Any]:
        try:
            document = json.loads(line)
            item = (document["event_time"], document["event_id"])
            self._groups.setdefault(document["entity_id"], []).append(item)
        except (ValueError, TypeError, KeyError):
            yield TaggedOutput(_INVALID, line)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        groups, self._groups = self._groups, {}
        for entity_id, items in groups.items():
            yield GlobalWindows.windowed_value((entity_id, items))


def _ids_in_time_order(element: tuple[Any, Iterable[list[tuple[Any, Any]]]]) -> list[Any]:
    # RFC 3339 strings in one format sort in time order, as the demo stream's do.
    _, chunks = element
    return [event_id for _, event_id in sorted(item for chunk in chunks for item in chunk)]


def _grouping(records: PCollection[bytes], feature: str) -> list[PCollection[Any]]:
    # The shape of the project's bounded scoring (group per bundle, GroupByKey, sort,
    # one output per event) without the contract checks, the records or the detector:
    # an upper bound for any row that orders each entity's events this way.
    grouped = records | "GroupLines" >> beam.ParDo(_GroupLinesInBundle()).with_outputs(
        _INVALID, main=_VALID
    )
    ordered = (
        grouped[_VALID]
        | "GroupByEntity" >> beam.GroupByKey()
        | "SortByTime" >> beam.FlatMap(_ids_in_time_order)
    )
    return [ordered, grouped[_INVALID]]


def _keyed_row(line: bytes, feature: str) -> Iterator[Any]:
    """Yield (entity_id, Row with the one feature), or tag a line that has neither."""
    try:
        document = json.loads(line)
        key, value = document["entity_id"], float(document["features"][feature])
    except (ValueError, TypeError, KeyError):
        yield TaggedOutput(_INVALID, line)
        return
    if not isinstance(key, str) or not math.isfinite(value):
        yield TaggedOutput(_INVALID, line)
        return
    yield (key, Row(**{feature: value}))


def _beam_zscore(records: PCollection[bytes], feature: str) -> list[PCollection[Any]]:
    # The tuple output type makes AnomalyDetection keep one detector state per entity.
    keyed = records | "KeyedRow" >> beam.FlatMap(_keyed_row, feature).with_outputs(
        _INVALID, main=_VALID
    )
    rows = keyed[_VALID] | "TypeRows" >> beam.Map(lambda pair: pair).with_output_types(
        tuple[str, Any]
    )
    results: PCollection[Any] = rows | "AnomalyDetection" >> AnomalyDetection(
        ZScore(features=[feature])
    )
    return [results, keyed[_INVALID]]


def _parse_score(records: PCollection[bytes], feature: str) -> list[PCollection[Any]]:
    # The settings of pipeline.run_local (through build_core) for a finite file.
    parsed = records | "ParseEvents" >> ParseEvents(event_timestamps=False)
    scored = parsed[parse.EVENTS] | "Score" >> ScoreEvents(ScoringConfig(bounded_input=True))
    return [scored[scoring.SCORED], parsed[parse.DEAD_LETTERS], scored[scoring.DEAD_LETTERS]]


def _core(records: PCollection[bytes], feature: str) -> list[PCollection[Any]]:
    settings = CoreSettings(
        scoring=ScoringConfig(bounded_input=True), triage=TriageConfig(handler="none")
    )
    outputs = build_core(records, settings)
    return [outputs.scored, outputs.dead_letters, outputs.duplicates]


# Each builder returns the branches whose elements together account for every input
# record once: the main output first, then invalid or duplicate records.
_BUILDERS: Final[dict[str, Callable[[PCollection[bytes], str], list[PCollection[Any]]]]] = {
    PASSTHROUGH: _passthrough,
    GROUPING: _grouping,
    BEAM_ZSCORE: _beam_zscore,
    PARSE_SCORE: _parse_score,
    CORE: _core,
}


@dataclass(frozen=True)
class StageResult:
    """Timings of one pipeline row: `seconds` has one wall time per repeat.

    `outputs` counts the row's main output (scored events, anomaly results or
    parsed documents). `set_aside` counts the records it routed elsewhere:
    invalid lines, dead letters and, for the core, duplicates.
    """

    stage: str
    events: int
    outputs: int
    set_aside: int
    seconds: tuple[float, ...]
    max_rss_mib: float

    @property
    def median_seconds(self) -> float:
        """Median wall time over the repeats."""
        return statistics.median(self.seconds)

    @property
    def events_per_second(self) -> float:
        """Input events divided by the median wall time."""
        return self.events / self.median_seconds

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict, derived figures included."""
        return {
            "stage": self.stage,
            "label": STAGE_LABELS[self.stage],
            "events": self.events,
            "outputs": self.outputs,
            "set_aside": self.set_aside,
            "seconds": list(self.seconds),
            "median_seconds": self.median_seconds,
            "events_per_second": self.events_per_second,
            "max_rss_mib": self.max_rss_mib,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageResult:
        """Rebuild a result from `to_json` output, as a stage subprocess prints it."""
        return cls(
            stage=str(data["stage"]),
            events=int(data["events"]),
            outputs=int(data["outputs"]),
            set_aside=int(data["set_aside"]),
            seconds=tuple(float(value) for value in data["seconds"]),
            max_rss_mib=float(data["max_rss_mib"]),
        )


def run_once(stage: str, input_file: Path, feature: str) -> tuple[float, int, int]:
    """Build and run one row over `input_file`; return its wall time and both counts.

    The time covers Pipeline.run() until the run finishes, so it includes the
    runner's start (about 0.1 s for a one-line input, measured on a 2-CPU machine),
    but not the construction of the graph.
    """
    if stage not in _BUILDERS:
        raise ValueError(f"stage {stage!r} is unknown; use one of {', '.join(STAGES)}")
    pipeline = beam.Pipeline(options=runner_options())
    main, *others = _BUILDERS[stage](_read(pipeline, input_file), feature)
    _ = main | "CountOutputs" >> beam.ParDo(_CountOutputs(_OUTPUTS))
    for index, branch in enumerate(others):
        _ = branch | f"CountSetAside{index}" >> beam.ParDo(_CountOutputs(_SET_ASIDE))

    started = time.perf_counter()
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - started

    counters = result.metrics().query(MetricsFilter().with_namespace(_NAMESPACE))["counters"]
    totals = {_OUTPUTS: 0, _SET_ASIDE: 0}
    for counter in counters:
        totals[counter.key.metric.name] += int(counter.result)
    return seconds, totals[_OUTPUTS], totals[_SET_ASIDE]


def run_stage(
    stage: str, input_file: Path, *, events: int, feature: str, repeats: int = 1
) -> StageResult:
    """Run one row `repeats` times over `input_file`, which contains `events` payloads.

    `feature` is the one feature that Beam's ZScore row reads; the project's rows
    score every feature of an event.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats} is invalid; pass 1 or more")
    seconds: list[float] = []
    outputs = set_aside = 0
    for _ in range(repeats):
        elapsed, outputs, set_aside = run_once(stage, input_file, feature)
        seconds.append(elapsed)
    return StageResult(
        stage=stage,
        events=events,
        outputs=outputs,
        set_aside=set_aside,
        seconds=tuple(seconds),
        max_rss_mib=max_rss_mib(),
    )
