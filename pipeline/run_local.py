"""Run the pipeline on the DirectRunner over local files and print the run summary.

Usage: python -m pipeline.run_local --input <file|dir> --output <dir>
       [--triage local|none] [--labels <windows.json>] [--features <file>]
"""

# Beam transform constructors carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.coders import BytesCoder
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import PCollection

from pipeline import metrics
from pipeline.detector import DetectorConfig
from pipeline.enrich import FeaturesFileError, JsonLinesEnrichmentHandler, load_features_file
from pipeline.graph import CoreSettings, build_core
from pipeline.labels import LabelsError, Window, load_windows
from pipeline.records import DeadLetter, Detection, ScoredEvent
from pipeline.scoring import ScoringConfig
from pipeline.sources import (
    InputError,
    check_jsonl_start,
    check_nab_headers,
    input_kind,
    nab_files,
    read_nab_file,
)
from pipeline.summary import (
    DEAD_LETTER_FILE,
    DETECTIONS_FILE,
    SCORED_FILE,
    RunSummary,
    summarize,
)
from pipeline.triage import TriageConfig, check_max_per_second

_LOG = logging.getLogger(__name__)

LOCAL_TRIAGE_HANDLERS = ("local", "none")
USAGE_ERROR = 2
FEATURES_FORMAT = 'a JSON Lines file with one {"entity_id": ..., <field>: <value>} object per line'


class OutputDirError(ValueError):
    """An output path that is not a directory this process can create and write."""


@dataclass(frozen=True)
class LocalRunConfig:
    """One local run: inputs, output directory and stage settings."""

    input_path: Path
    output_dir: Path
    triage: TriageConfig = field(default_factory=TriageConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    features: dict[str, dict[str, Any]] | None = None
    windows: dict[str, list[Window]] | None = None
    dedup_window_seconds: float = 600.0
    max_triage_examples: int = 3


def check_input(path: Path) -> None:
    """Raise InputError when `path` is missing or its content does not match its format.

    The format follows the suffix (see input_kind). Each CSV file must start with the
    NAB header, and a JSON Lines file must not start with a CSV header.
    """
    if input_kind(path) == "nab":
        check_nab_headers(nab_files(path))
    else:
        check_jsonl_start(path)


def load_features(path: Path) -> dict[str, dict[str, Any]]:
    """Read the --features file, or raise FeaturesFileError naming the path and the fix."""
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise FeaturesFileError(f"features file {path} {problem}; pass {FEATURES_FORMAT}")
    return load_features_file(path)


def prepare_output_dir(path: Path) -> None:
    """Create `path` if needed, check that a file can be written in it, remove old outputs.

    Raises OutputDirError naming the path, so that a bad output stops the run before
    the pipeline starts rather than after it has read the input.
    """
    fix = "choose a directory you can write"
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"output {path} exists and is not a directory; {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise OutputDirError(
            f"cannot write to output directory {path}: {error.strerror}; {fix}"
        ) from None
    # Beam's file sink would replace these too, but it warns once per file with a
    # pattern that reads as empty. Other files in the directory are left alone.
    for name in (SCORED_FILE, DETECTIONS_FILE, DEAD_LETTER_FILE):
        earlier = path / name
        if earlier.is_file():
            _LOG.info("replacing %s from an earlier run", earlier)
            earlier.unlink()


def _input_entity_ids(path: Path) -> set[str]:
    """Return the entity_ids of a NAB input's files, or an empty set for JSON Lines."""
    return {entity_id for entity_id, _ in nab_files(path)} if input_kind(path) == "nab" else set()


def _read_records(pipeline: beam.Pipeline, path: Path) -> PCollection[Any]:
    records: PCollection[Any]
    if input_kind(path) == "jsonl":
        records = (
            pipeline
            | "ReadJsonLines" >> beam.io.ReadFromText(str(path), coder=BytesCoder())
            | "DropBlankLines" >> beam.Filter(lambda line: bool(line.strip()))
        )
        return records
    records = (
        pipeline
        | "ListCsvFiles" >> beam.Create(nab_files(path))
        | "ReadCsvRows" >> beam.FlatMapTuple(read_nab_file)
    )
    return records


def _write_jsonl(records: PCollection[Any], output_dir: Path, name: str) -> None:
    _ = (
        records
        | f"{name}ToJson" >> beam.Map(lambda record: record.to_json_line())
        | f"Write{name}"
        >> beam.io.WriteToText(
            str(output_dir / name),
            file_name_suffix=".jsonl",
            num_shards=1,
            shard_name_template="",
        )
    )


def _counters(result: Any) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(metrics.NAMESPACE))
    counters: dict[str, int] = {}
    for counter in query["counters"]:
        counters[counter.key.metric.name] = counters.get(counter.key.metric.name, 0) + int(
            counter.result
        )
    return counters


def run(config: LocalRunConfig) -> RunSummary:
    """Run the pipeline over `config.input_path` on the DirectRunner and summarize it.

    Raises InputError or OutputDirError before the pipeline starts when the input or
    the output directory cannot be used.
    """
    check_input(config.input_path)
    prepare_output_dir(config.output_dir)
    settings = CoreSettings(
        scoring=ScoringConfig(detector=config.detector, bounded_input=True),
        triage=config.triage,
        dedup_window_seconds=config.dedup_window_seconds,
        enrichment=(
            JsonLinesEnrichmentHandler(config.features) if config.features is not None else None
        ),
    )
    options = PipelineOptions(flags=[], runner="DirectRunner", direct_num_workers=1)
    pipeline = beam.Pipeline(options=options)
    outputs = build_core(_read_records(pipeline, config.input_path), settings)
    scored: PCollection[ScoredEvent] = outputs.scored
    detections: PCollection[Detection] = outputs.detections
    dead_letters: PCollection[DeadLetter] = outputs.dead_letters
    _write_jsonl(scored, config.output_dir, "scored_events")
    _write_jsonl(detections, config.output_dir, "detections")
    _write_jsonl(dead_letters, config.output_dir, "dead_letter")

    result = pipeline.run()
    result.wait_until_finish()
    return summarize(
        config.output_dir,
        _counters(result),
        config.windows,
        config.max_triage_examples,
        input_entity_ids=_input_entity_ids(config.input_path),
        input_path=config.input_path,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.run_local",
        description="Run the anomaly-detection pipeline locally on the DirectRunner.",
    )
    parser.add_argument(
        "--input",
        required=True,
        type=Path,
        help="NAB CSV file (.csv) or directory of them, or a JSON Lines file of events "
        "(any other suffix; .gz, .bz2, .xz, .zst and .deflate are decompressed)",
    )
    parser.add_argument("--output", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--triage",
        default="local",
        choices=LOCAL_TRIAGE_HANDLERS,
        help="local: embedded Gemma 3 270M; none: skip triage (default: local)",
    )
    parser.add_argument(
        "--triage-max-per-second",
        type=float,
        default=1.0,
        help="maximum triage calls per second, above 0 (default: 1.0); detections over "
        "the budget are marked skipped",
    )
    parser.add_argument(
        "--labels", type=Path, help="NAB combined_windows.json to evaluate detections against"
    )
    parser.add_argument(
        "--features",
        type=Path,
        help="JSON Lines file of {entity_id, ...} objects, one per line, joined by "
        "entity_id into each event's context",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run, print the summary; return 2 on bad arguments or output."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        check_input(args.input)
        windows = load_windows(args.labels) if args.labels else None
        features = load_features(args.features) if args.features else None
        check_max_per_second(
            args.triage_max_per_second,
            args.triage,
            rate_name="--triage-max-per-second",
            handler_none="--triage none",
        )
        triage = TriageConfig(handler=args.triage, max_per_second=args.triage_max_per_second)
        # Last, so that an invalid argument above leaves no empty output directory behind.
        prepare_output_dir(args.output)
    except (InputError, LabelsError, FeaturesFileError, OutputDirError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR

    summary = run(
        LocalRunConfig(
            input_path=args.input,
            output_dir=args.output,
            triage=triage,
            features=features,
            windows=windows,
        )
    )
    print(summary.render())
    print(f"outputs: {args.output}/scored_events.jsonl, detections.jsonl, dead_letter.jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
