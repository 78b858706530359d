"""Tests for the BigQuery table definitions and the records serialized through them."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from pipeline.records import BaselineStat, DeadLetter, Detection, ScoredEvent, Triage
from pipeline.schemas import TABLES, SchemaField, TableSpec, beam_schema, schema_json

MOMENT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

SCORED = ScoredEvent(
    event_id="e1",
    entity_id="card-1",
    event_time=MOMENT,
    anomaly_score=0.91,
    is_anomaly=True,
    detector="ewma-robust-z/1",
    scored_at=MOMENT,
)
DETECTION = Detection(
    event_id="e1",
    entity_id="card-1",
    event_time=MOMENT,
    anomaly_score=0.91,
    detector="ewma-robust-z/1",
    features={"amount": 500.0},
    attributes={"country": "FR", "online": True},
    message="online purchase",
    context={"segment": "gold"},
    baseline=(BaselineStat("amount", 500.0, 40.0, 12.0, 30, 0.97),),
    triage=Triage(status="done", severity="high", summary="Amount 12x usual.", model="gemma"),
    detected_at=MOMENT,
)
DEAD = DeadLetter.for_payload(
    b"{", error_code="invalid_json", error_message="bad", stage="parse", failed_at=MOMENT
)
RECORDS: dict[str, ScoredEvent | Detection | DeadLetter] = {
    "scored_events": SCORED,
    "detections": DETECTION,
    "dead_letter": DEAD,
}


@pytest.mark.parametrize("table_key", sorted(TABLES))
def test_schema_json_lists_fields(table_key):
    fields = json.loads(schema_json(table_key))
    assert [field["name"] for field in fields] == [f.name for f in TABLES[table_key].fields]
    assert all({"name", "type", "mode", "description"} <= set(field) for field in fields)


@pytest.mark.parametrize("table_key", sorted(TABLES))
def test_beam_schema_matches_json(table_key):
    assert beam_schema(table_key) == {"fields": json.loads(schema_json(table_key))}


@pytest.mark.parametrize("table_key", sorted(TABLES))
def test_record_fields_match_columns(table_key):
    record = RECORDS[table_key]
    names = {field.name for field in dataclasses.fields(record)}
    assert names == {field.name for field in TABLES[table_key].fields}


@pytest.mark.parametrize("table_key", sorted(TABLES))
def test_bigquery_row_has_every_column(table_key):
    row = RECORDS[table_key].to_bigquery_row()
    assert list(row) == [field.name for field in TABLES[table_key].fields]


def test_json_columns_are_text_in_rows():
    row = DETECTION.to_bigquery_row()
    assert json.loads(row["features"]) == {"amount": 500.0}
    assert json.loads(row["attributes"]) == {"country": "FR", "online": True}


def test_json_columns_are_objects_in_json():
    data = DETECTION.to_json()
    assert data["features"] == {"amount": 500.0}
    assert data["baseline"][0]["mean"] == 40.0
    assert data["triage"]["severity"] == "high"
    assert data["event_time"] == "2024-05-01T12:00:00Z"


@pytest.mark.parametrize(
    ("record", "parse"),
    [
        (SCORED, ScoredEvent.from_json),
        (DETECTION, Detection.from_json),
        (DEAD, DeadLetter.from_json),
    ],
)
def test_from_json_round_trip(record, parse):
    assert parse(json.loads(record.to_json_line())) == record


def test_unknown_table_key_names_valid_keys():
    with pytest.raises(KeyError, match="dead_letter"):
        schema_json("nope")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a", "type": "TEXT"}, "type 'TEXT'"),
        ({"name": "a", "type": "STRING", "mode": "OPTIONAL"}, "mode 'OPTIONAL'"),
        ({"name": "a", "type": "RECORD"}, "RECORD needs subfields"),
    ],
)
def test_schema_field_rejects_invalid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SchemaField(**kwargs)


def test_table_spec_rejects_bad_partition():
    with pytest.raises(ValueError, match="TIMESTAMP"):
        TableSpec("t", "d", (SchemaField("a", "STRING"),), partition_field="a")


def test_required_none_is_rejected():
    broken = dataclasses.replace(SCORED, detector=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'detector' is REQUIRED"):
        broken.to_bigquery_row()
