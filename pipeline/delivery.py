"""Dataflow sinks: detections and dead letters to Pub/Sub, every output to BigQuery.

BigQuery rows use streaming inserts into tables the stack creates (CREATE_NEVER), so a
schema mismatch fails loudly instead of creating a second table. Rows that BigQuery
rejects for good (``failed_rows_with_errors``) become dead letters with stage
``sink:<table>``. Dead-letter rows that BigQuery rejects cannot go back into the same
table; they still reach the dead-letter topic, and are logged and counted.
"""

# Beam transform constructors and metric methods carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Final

import apache_beam as beam
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import RetryStrategy
from apache_beam.io.gcp.pubsub import PubsubMessage, WriteToPubSub
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import PCollection

from pipeline import metrics
from pipeline.graph import CoreOutputs
from pipeline.records import DeadLetter, Detection
from pipeline.schemas import beam_schema

_LOG = logging.getLogger(__name__)

BIGQUERY_INSERT_FAILED: Final = "bigquery_insert_failed"


def detection_message(detection: Detection) -> PubsubMessage:
    """Return the Pub/Sub message for a detection; attributes allow subscription filters."""
    attributes = {"event_id": detection.event_id, "entity_id": detection.entity_id}
    if detection.triage is not None:
        attributes["triage_status"] = detection.triage.status
        if detection.triage.severity:
            attributes["severity"] = detection.triage.severity
    return PubsubMessage(detection.to_json_line().encode("utf-8"), attributes)


def dead_letter_message(letter: DeadLetter) -> PubsubMessage:
    """Return the Pub/Sub message for a dead letter, with its stage and code as attributes."""
    attributes = {"stage": letter.stage, "error_code": letter.error_code}
    if letter.event_id:
        attributes["event_id"] = letter.event_id
    return PubsubMessage(letter.to_json_line().encode("utf-8"), attributes)


def failed_row_dead_letter(failure: tuple[str, dict[str, Any], Any], table_key: str) -> DeadLetter:
    """Turn one element of WriteToBigQuery.failed_rows_with_errors into a DeadLetter."""
    destination, row, errors = failure
    return DeadLetter.for_payload(
        json.dumps(row, sort_keys=True, default=str),
        error_code=BIGQUERY_INSERT_FAILED,
        error_message=f"BigQuery rejected the row for {destination}: {errors}",
        stage=f"sink:{table_key}",
        event_id=row.get("event_id"),
    )


class _LogRejectedDeadLetter(beam.DoFn):  # type: ignore[misc]
    def __init__(self) -> None:
        self._failures = Metrics.counter(metrics.NAMESPACE, metrics.SINK_FAILURES)

    def process(self, failure: tuple[str, dict[str, Any], Any]) -> None:
        destination, row, errors = failure
        self._failures.inc()
        _LOG.error(
            "BigQuery rejected dead-letter row for %s (event_id %s, stage %s): %s; the row "
            "is still on the dead-letter topic",
            destination,
            row.get("event_id"),
            row.get("stage"),
            errors,
        )


def _write_table(rows: PCollection[Any], table: str, table_key: str) -> Any:
    return (
        rows
        | f"{table_key}Rows" >> beam.Map(lambda record: record.to_bigquery_row())
        | f"Write{table_key}"
        >> WriteToBigQuery(
            table,
            schema=beam_schema(table_key),
            method=WriteToBigQuery.Method.STREAMING_INSERTS,
            create_disposition=BigQueryDisposition.CREATE_NEVER,
            write_disposition=BigQueryDisposition.WRITE_APPEND,
            insert_retry_strategy=RetryStrategy.RETRY_ON_TRANSIENT_ERROR,
        )
    )


def deliver(
    outputs: CoreOutputs,
    *,
    detections_topic: str,
    dead_letter_topic: str,
    scored_events_table: str,
    detections_table: str,
    dead_letter_table: str,
) -> None:
    """Write the core's outputs to Pub/Sub and BigQuery (see the module docstring)."""
    _ = (
        outputs.detections
        | "DetectionMessages" >> beam.Map(detection_message)
        | "PublishDetections" >> WriteToPubSub(detections_topic, with_attributes=True)
    )

    scored = _write_table(outputs.scored, scored_events_table, "scored_events")
    detections = _write_table(outputs.detections, detections_table, "detections")
    sink_failures: Sequence[PCollection[DeadLetter]] = (
        scored.failed_rows_with_errors
        | "ScoredRejects" >> beam.Map(failed_row_dead_letter, "scored_events"),
        detections.failed_rows_with_errors
        | "DetectionRejects" >> beam.Map(failed_row_dead_letter, "detections"),
    )
    dead_letters = (outputs.dead_letters, *sink_failures) | "AllDeadLetters" >> beam.Flatten()

    _ = (
        dead_letters
        | "DeadLetterMessages" >> beam.Map(dead_letter_message)
        | "PublishDeadLetters" >> WriteToPubSub(dead_letter_topic, with_attributes=True)
    )
    dead_letter_rows = _write_table(dead_letters, dead_letter_table, "dead_letter")
    _ = dead_letter_rows.failed_rows_with_errors | "LogDeadLetterRejects" >> beam.ParDo(
        _LogRejectedDeadLetter()
    )
