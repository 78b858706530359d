"""The runner-independent core of the pipeline: parse, deduplicate, enrich, score, triage."""

# Beam transform constructors carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import PCollection, Row
from apache_beam.transforms.enrichment import EnrichmentSourceHandler

from pipeline import contract, dedup, enrich, parse, scoring, sources
from pipeline.dedup import DeduplicateEvents
from pipeline.enrich import EnrichEvents
from pipeline.parse import ParseEvents
from pipeline.records import DeadLetter, Detection, ScoredEvent
from pipeline.scoring import ScoreEvents, ScoringConfig
from pipeline.triage import DEAD_LETTERS as TRIAGE_DEAD_LETTERS
from pipeline.triage import DETECTIONS as TRIAGE_DETECTIONS
from pipeline.triage import TriageConfig, TriageDetections

# Dead-letter stages that stand for an input record (its only output). Later stages
# (triage, sinks) dead-letter an output of a record that was already scored.
INPUT_STAGES = frozenset({sources.STAGE, contract.STAGE, enrich.STAGE, scoring.STAGE})


@dataclass(frozen=True)
class CoreSettings:
    """Settings of the core graph; `enrichment` None skips the enrichment stage."""

    scoring: ScoringConfig
    triage: TriageConfig
    dedup_window_seconds: float = 600.0
    enrichment: EnrichmentSourceHandler[Row, Row] | None = None


@dataclass(frozen=True)
class CoreOutputs:
    """The core's outputs: ScoredEvent, triaged Detection, DeadLetter, duplicate event_id."""

    scored: PCollection[ScoredEvent]
    detections: PCollection[Detection]
    dead_letters: PCollection[DeadLetter]
    duplicates: PCollection[str]


def build_core(records: PCollection[Any], settings: CoreSettings) -> CoreOutputs:
    """Apply the core stages to raw records (bytes, str, or reader DeadLetters)."""
    bounded = settings.scoring.bounded_input
    parsed = records | "ParseEvents" >> ParseEvents(event_timestamps=not bounded)
    unique = parsed[parse.EVENTS] | "Deduplicate" >> DeduplicateEvents(
        settings.dedup_window_seconds, bounded_input=bounded
    )
    events = unique[dedup.EVENTS]
    dead_letters: list[PCollection[DeadLetter]] = [parsed[parse.DEAD_LETTERS]]

    if settings.enrichment is not None:
        enriched = events | "Enrich" >> EnrichEvents(settings.enrichment)
        events = enriched[enrich.EVENTS]
        dead_letters.append(enriched[enrich.DEAD_LETTERS])

    scored = events | "Score" >> ScoreEvents(settings.scoring)
    dead_letters.append(scored[scoring.DEAD_LETTERS])

    triaged = scored[scoring.DETECTIONS] | "Triage" >> TriageDetections(settings.triage)
    dead_letters.append(triaged[TRIAGE_DEAD_LETTERS])

    branches: Sequence[PCollection[DeadLetter]] = tuple(dead_letters)
    return CoreOutputs(
        scored=scored[scoring.SCORED],
        detections=triaged[TRIAGE_DETECTIONS],
        dead_letters=branches | "MergeDeadLetters" >> beam.Flatten(),
        duplicates=unique[dedup.DUPLICATES],
    )
