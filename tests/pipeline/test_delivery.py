"""Tests for the Dataflow sinks and entry point, built without running or calling the cloud."""

# Beam's pipeline APIs carry no annotations, and test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import json
from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.delivery import dead_letter_message, detection_message, failed_row_dead_letter
from pipeline.main import build_pipeline, settings_from_options
from pipeline.options import validate_options
from pipeline.records import DeadLetter, Detection, Triage
from tests.pipeline.test_options import STACK_PARAMETERS, flags

MOMENT = datetime(2024, 5, 1, tzinfo=UTC)
DETECTION = Detection(
    event_id="e1",
    entity_id="card-1",
    event_time=MOMENT,
    anomaly_score=0.9,
    detector="d",
    features={"v": 1.0},
    attributes={},
    message=None,
    context={},
    baseline=(),
    triage=Triage(status="done", severity="high", summary="s", model="m"),
    detected_at=MOMENT,
)


def test_detection_message_attributes():
    message = detection_message(DETECTION)
    assert message.attributes == {
        "event_id": "e1",
        "entity_id": "card-1",
        "triage_status": "done",
        "severity": "high",
    }
    assert json.loads(message.data)["event_id"] == "e1"


def test_dead_letter_message_attributes():
    letter = DeadLetter.for_payload("x", error_code="c", error_message="m", stage="parse")
    assert dead_letter_message(letter).attributes == {"stage": "parse", "error_code": "c"}


def test_failed_row_becomes_dead_letter():
    row = {"event_id": "e1", "anomaly_score": 2.0}
    letter = failed_row_dead_letter(("p:d.t", row, [{"reason": "invalid"}]), "scored_events")
    assert letter.stage == "sink:scored_events"
    assert letter.error_code == "bigquery_insert_failed"
    assert letter.event_id == "e1"
    assert json.loads(letter.payload) == row
    assert "p:d.t" in letter.error_message


def test_settings_from_options():
    values = validate_options(PipelineOptions(flags(STACK_PARAMETERS)))
    settings = settings_from_options(values, project="my-project")
    assert settings.triage.handler == "vertex"
    assert settings.triage.max_per_second == 0.5
    assert settings.enrichment is not None
    assert settings.scoring.bounded_input is False


def test_bigtable_needs_a_project():
    parameters = {**STACK_PARAMETERS}
    del parameters["bigtable_project"]
    values = validate_options(PipelineOptions(flags(parameters)))
    with pytest.raises(ValueError, match="--bigtable_project is missing"):
        settings_from_options(values, project=None)


def test_streaming_graph_builds():
    parameters = {**STACK_PARAMETERS, "triage_handler": "none"}
    options = PipelineOptions([*flags(parameters), "--project=my-project", "--streaming"])
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, validate_options(options))
    names = {
        transform.unique_name
        for transform in pipeline.to_runner_api().components.transforms.values()
    }
    for expected in (
        "ReadEvents",
        "Enrich",
        "Triage",
        "PublishDetections",
        "Writescored_events",
        "PublishDeadLetters",
        "Writedead_letter",
    ):
        assert expected in names
