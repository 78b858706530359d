"""Tests for the pipeline options and the Flex Template metadata built from them."""

# Beam's pipeline APIs carry no annotations, and test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import json

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import template_metadata as metadata_module
from pipeline.options import OPTION_NAMES, OPTION_SPECS, AnomalyPipelineOptions, validate_options
from pipeline.template_metadata import template_metadata

# The parameters the stack passes to the Flex Template job.
STACK_PARAMETERS = {
    "input_subscription": "projects/my-project/subscriptions/events",
    "detections_topic": "projects/my-project/topics/detections",
    "dead_letter_topic": "projects/my-project/topics/dead-letter",
    "scored_events_table": "my-project:anomaly.scored_events",
    "detections_table": "my-project:anomaly.detections",
    "dead_letter_table": "my-project:anomaly.dead_letter",
    "bigtable_project": "my-project",
    "bigtable_instance": "anomaly-features",
    "bigtable_table": "entities",
    "triage_handler": "vertex",
    "vertex_endpoint": "projects/my-project/locations/us-central1/endpoints/123",
    "triage_max_per_second": "0.5",
}


def flags(parameters):
    return [f"--{name}={value}" for name, value in parameters.items()]


def test_metadata_declares_every_option():
    names = [parameter["name"] for parameter in template_metadata()["parameters"]]
    assert names == list(OPTION_NAMES)


def test_every_option_is_parsed():
    parser_names = set(
        AnomalyPipelineOptions(flags=[]).get_all_options(retain_unknown_options=False)
    )
    assert set(OPTION_NAMES) <= parser_names


def test_metadata_shape():
    metadata = template_metadata()
    assert metadata["streaming"] is True
    assert metadata["supportsAtLeastOnce"] is True
    assert metadata["supportsExactlyOnce"] is True
    assert metadata["defaultStreamingMode"] in {"AT_LEAST_ONCE", "EXACTLY_ONCE"}
    for parameter in metadata["parameters"]:
        assert {"name", "label", "helpText", "isOptional"} <= set(parameter)
    json.dumps(metadata)


def test_stack_parameters_are_declared_and_match():
    declared = {parameter["name"]: parameter for parameter in template_metadata()["parameters"]}
    assert set(STACK_PARAMETERS) <= set(declared)
    for spec in OPTION_SPECS:
        if spec.name in STACK_PARAMETERS:
            spec.check(STACK_PARAMETERS[spec.name])


def test_required_parameters_are_the_sinks_and_source():
    required = {spec.name for spec in OPTION_SPECS if not spec.is_optional}
    assert required == {
        "input_subscription",
        "detections_topic",
        "dead_letter_topic",
        "scored_events_table",
        "detections_table",
        "dead_letter_table",
    }


def test_valid_options_parse_types():
    values = validate_options(PipelineOptions(flags(STACK_PARAMETERS)))
    assert values.triage_max_per_second == 0.5
    assert values.anomaly_threshold == 0.8
    assert values.warmup_events == 20


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_subscription": None}, "--input_subscription is missing"),
        ({"detections_topic": "detections"}, "--detections_topic='detections' is invalid"),
        ({"scored_events_table": "p.d.t"}, "--scored_events_table='p.d.t' is invalid"),
        ({"triage_handler": "gpu"}, "--triage_handler='gpu' is invalid"),
        ({"vertex_endpoint": None}, "--vertex_endpoint is missing"),
        ({"bigtable_table": None}, "--bigtable_instance and --bigtable_table go together"),
        ({"anomaly_threshold": "1.5"}, "--anomaly_threshold=1.5 is out of range"),
        (
            {"triage_max_per_second": "0"},
            "--triage_max_per_second 0.0 is invalid; pass a finite number above 0, "
            "or use --triage_handler=none to turn triage off",
        ),
        (
            {"triage_max_per_second": "0", "triage_handler": "none", "vertex_endpoint": None},
            "--triage_max_per_second 0.0 is invalid; pass a finite number above 0 or omit it, "
            "because --triage_handler=none makes no triage calls",
        ),
    ],
)
def test_invalid_options_name_the_flag(changes, message):
    parameters = {**STACK_PARAMETERS, **changes}
    parameters = {name: value for name, value in parameters.items() if value is not None}
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        validate_options(PipelineOptions(flags(parameters)))


def test_metadata_cli_writes_file(tmp_path):
    path = tmp_path / "metadata.json"
    assert metadata_module.main(["--output", str(path)]) == 0
    assert json.loads(path.read_text()) == template_metadata()
