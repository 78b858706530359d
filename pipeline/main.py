"""Dataflow entry point (FLEX_TEMPLATE_PYTHON_PY_FILE): the streaming pipeline on Pub/Sub."""

# Beam transform constructors carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import logging
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.gcp.pubsub import ReadFromPubSub
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
)

from pipeline.delivery import deliver
from pipeline.detector import DetectorConfig
from pipeline.enrich import bigtable_handler
from pipeline.graph import CoreSettings, build_core
from pipeline.options import AnomalyPipelineOptions, validate_options
from pipeline.scoring import ScoringConfig
from pipeline.triage import TriageConfig

_LOG = logging.getLogger(__name__)


def settings_from_options(values: AnomalyPipelineOptions, project: str | None) -> CoreSettings:
    """Build the core settings from validated pipeline options."""
    enrichment = None
    if values.bigtable_instance and values.bigtable_table:
        bigtable_project = values.bigtable_project or project
        if not bigtable_project:
            raise ValueError(
                "--bigtable_project is missing and the job has no --project; set one of them"
            )
        enrichment = bigtable_handler(
            bigtable_project, values.bigtable_instance, values.bigtable_table
        )
    return CoreSettings(
        scoring=ScoringConfig(
            detector=DetectorConfig(
                threshold=values.anomaly_threshold,
                warmup_events=values.warmup_events,
                half_life_events=values.half_life_events,
            ),
            allowed_lateness_seconds=values.allowed_lateness_seconds,
            entity_ttl_seconds=values.entity_ttl_seconds,
        ),
        triage=TriageConfig(
            handler=values.triage_handler,
            vertex_endpoint=values.vertex_endpoint or None,
            max_per_second=values.triage_max_per_second,
        ),
        dedup_window_seconds=values.dedup_window_seconds,
        enrichment=enrichment,
    )


def build_pipeline(pipeline: beam.Pipeline, values: AnomalyPipelineOptions) -> None:
    """Add the streaming graph (Pub/Sub in, Pub/Sub and BigQuery out) to `pipeline`."""
    project = values.view_as(GoogleCloudOptions).project
    settings = settings_from_options(values, project)
    payloads = pipeline | "ReadEvents" >> ReadFromPubSub(
        subscription=values.input_subscription,
        id_label=values.id_attribute or None,
        timestamp_attribute=values.event_time_attribute or None,
    )
    outputs = build_core(payloads, settings)
    deliver(
        outputs,
        detections_topic=values.detections_topic,
        dead_letter_topic=values.dead_letter_topic,
        scored_events_table=values.scored_events_table,
        detections_table=values.detections_table,
        dead_letter_table=values.dead_letter_table,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Validate the options, build the streaming pipeline and submit it."""
    logging.basicConfig(level=logging.INFO)
    options = PipelineOptions(list(argv) if argv is not None else None)
    options.view_as(StandardOptions).streaming = True
    values = validate_options(options)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, values)
    # A Flex Template launch only submits the job, so the launcher does not wait on it.
    result = pipeline.run()
    _LOG.info("submitted the streaming job, state %s", result.state)


if __name__ == "__main__":
    main()
