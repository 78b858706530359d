"""BigQuery table definitions for the pipeline's outputs, shared by the pipeline and the stack."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

FIELD_TYPES = frozenset(
    {"STRING", "INT64", "INTEGER", "FLOAT64", "FLOAT", "BOOL", "BOOLEAN"}
    | {"TIMESTAMP", "JSON", "RECORD"}
)
FIELD_MODES = frozenset({"NULLABLE", "REQUIRED", "REPEATED"})


@dataclass(frozen=True)
class SchemaField:
    """One BigQuery column, in the terms of the BigQuery `TableFieldSchema` resource."""

    name: str
    type: str
    mode: str = "NULLABLE"
    description: str = ""
    fields: tuple[SchemaField, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(
                f"field {self.name!r} has type {self.type!r}; use one of {sorted(FIELD_TYPES)}"
            )
        if self.mode not in FIELD_MODES:
            raise ValueError(
                f"field {self.name!r} has mode {self.mode!r}; use one of {sorted(FIELD_MODES)}"
            )
        if (self.type == "RECORD") != bool(self.fields):
            raise ValueError(
                f"field {self.name!r}: a RECORD needs subfields and only a RECORD may have them"
            )

    def to_api(self) -> dict[str, Any]:
        """Return the field as the BigQuery REST API writes it (`name`, `type`, `mode`, ...)."""
        field: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "mode": self.mode,
            "description": self.description,
        }
        if self.fields:
            field["fields"] = [sub.to_api() for sub in self.fields]
        return field


@dataclass(frozen=True)
class TableSpec:
    """A BigQuery table: default name, columns, partitioning and clustering."""

    table_id: str
    description: str
    fields: tuple[SchemaField, ...]
    partition_field: str | None = None
    clustering_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [field.name for field in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.table_id!r} declares a column twice: {names}")
        top_level = dict(zip(names, self.fields, strict=True))
        if self.partition_field is not None:
            partition = top_level.get(self.partition_field)
            if partition is None or partition.type != "TIMESTAMP":
                raise ValueError(
                    f"table {self.table_id!r}: partition field {self.partition_field!r} "
                    "must be a top-level TIMESTAMP column"
                )
        for name in self.clustering_fields:
            if name not in top_level:
                raise ValueError(
                    f"table {self.table_id!r}: clustering field {name!r} is not a column"
                )

    def field(self, name: str) -> SchemaField:
        """Return the top-level column called `name`."""
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"table {self.table_id!r} has no column {name!r}")


def _required(name: str, type_: str, description: str) -> SchemaField:
    return SchemaField(name, type_, "REQUIRED", description)


def _nullable(name: str, type_: str, description: str) -> SchemaField:
    return SchemaField(name, type_, "NULLABLE", description)


_EVENT_ID = _required("event_id", "STRING", "Producer-assigned id, unique per event.")
_ENTITY_ID = _required(
    "entity_id", "STRING", "Key that detector state is kept per: a card, a host, a sensor."
)
_EVENT_TIME = _required("event_time", "TIMESTAMP", "When the event happened, from the payload.")
_SCORE = _required("anomaly_score", "FLOAT64", "Anomaly score in [0, 1]; higher is more anomalous.")
_DETECTOR = _required("detector", "STRING", "Name and version of the detector that scored.")

_BASELINE = SchemaField(
    "baseline",
    "RECORD",
    "REPEATED",
    "The entity's per-feature baseline from detector state, before this event updated it.",
    (
        _required("feature", "STRING", "Feature name."),
        _nullable("value", "FLOAT64", "The event's value for this feature."),
        _required(
            "mean",
            "FLOAT64",
            "Expected value: the weighted mean of past values, or the daily profile's "
            "mean for this hour when the profile scored the event.",
        ),
        _required(
            "std",
            "FLOAT64",
            "Scale the deviation was divided by: the level baseline's spread, or the "
            "daily profile's residual scale when the profile scored the event.",
        ),
        _required("count", "INT64", "Number of past values the baseline has seen."),
        _required("score", "FLOAT64", "This feature's anomaly score in [0, 1]."),
    ),
)

_TRIAGE = SchemaField(
    "triage",
    "RECORD",
    "NULLABLE",
    "Model triage of the detection. Triage annotates and never changes is_anomaly.",
    (
        _required("status", "STRING", "done, skipped or failed."),
        _nullable("severity", "STRING", "low, medium, high or critical; set when status is done."),
        _nullable("summary", "STRING", "Short explanation from the model; set when done."),
        _nullable("model", "STRING", "Model that wrote the summary; set when done."),
        _nullable("reason", "STRING", "Why triage was skipped or failed."),
    ),
)

TABLES: Mapping[str, TableSpec] = MappingProxyType(
    {
        "scored_events": TableSpec(
            table_id="scored_events",
            description="Every valid, non-duplicate event once, with its anomaly score.",
            fields=(
                _EVENT_ID,
                _ENTITY_ID,
                _EVENT_TIME,
                _SCORE,
                _required("is_anomaly", "BOOL", "True when anomaly_score reached the threshold."),
                _DETECTOR,
                _required("scored_at", "TIMESTAMP", "Processing time when the event was scored."),
            ),
            partition_field="event_time",
            clustering_fields=("entity_id", "is_anomaly"),
        ),
        "detections": TableSpec(
            table_id="detections",
            description="Scored events with is_anomaly true, with context and triage.",
            fields=(
                _EVENT_ID,
                _ENTITY_ID,
                _EVENT_TIME,
                _SCORE,
                _DETECTOR,
                _required("features", "JSON", "The event's features: name to number."),
                _nullable("attributes", "JSON", "The event's attributes, if any."),
                _nullable("message", "STRING", "The event's free-text message, if any."),
                _nullable("context", "JSON", "Fields joined from the enrichment source, if any."),
                _BASELINE,
                _TRIAGE,
                _required("detected_at", "TIMESTAMP", "Processing time of the detection."),
            ),
            partition_field="event_time",
            clustering_fields=("entity_id",),
        ),
        "dead_letter": TableSpec(
            table_id="dead_letter",
            description="Records the pipeline could not process, with the stage and reason.",
            fields=(
                _required(
                    "payload",
                    "STRING",
                    "The failed record: the raw input text, or base64 when it was not UTF-8.",
                ),
                _required("payload_encoding", "STRING", "utf-8 or base64."),
                _required("error_code", "STRING", "Stable code such as missing_field."),
                _required("error_message", "STRING", "What failed, naming the field or value."),
                _required("stage", "STRING", "Pipeline stage that failed: parse, score, sink..."),
                _required("failed_at", "TIMESTAMP", "Processing time of the failure."),
                _nullable("event_id", "STRING", "The event's id when it could be read."),
            ),
            partition_field="failed_at",
            clustering_fields=("stage", "error_code"),
        ),
    }
)


def table_spec(table_key: str) -> TableSpec:
    """Return the TableSpec for `table_key`, or raise KeyError naming the valid keys."""
    try:
        return TABLES[table_key]
    except KeyError:
        raise KeyError(f"unknown table {table_key!r}; use one of {sorted(TABLES)}") from None


def schema_json(table_key: str) -> str:
    """Return the table's schema as the JSON list that `gcp.bigquery.Table(schema=...)` takes."""
    return json.dumps([field.to_api() for field in table_spec(table_key).fields])


def beam_schema(table_key: str) -> dict[str, Any]:
    """Return the table's schema as the dict that `beam.io.WriteToBigQuery(schema=...)` takes."""
    return {"fields": [field.to_api() for field in table_spec(table_key).fields]}
