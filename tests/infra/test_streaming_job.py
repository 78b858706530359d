"""Tests for the Flex Template spec and the Dataflow streaming job component."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pytest

from infra.components.streaming_job import (
    AT_LEAST_ONCE_EXPERIMENT,
    StreamingJob,
    StreamingJobArgs,
    bigquery_table_spec,
    checked_parameter,
    format_rate,
    load_template_metadata,
)
from pipeline.options import TABLE_PATTERN
from tests.infra.mocks import declare

JOB = "gcp:dataflow/flexTemplateJob:FlexTemplateJob"
OBJECT = "gcp:storage/bucketObject:BucketObject"
IMAGE = "us-central1-docker.pkg.dev/demo-project/pipeline/anomaly:1.0.0"
ENDPOINT = "projects/demo-project/locations/us-central1/endpoints/4242"
KEY = "projects/demo-project/locations/us-central1/keyRings/ring/cryptoKeys/dataflow"
SUBNET = "regions/us-central1/subnetworks/anomaly-dev-workers"


def make_args(**overrides: Any) -> StreamingJobArgs:
    values: dict[str, Any] = {
        "project": "demo-project",
        "region": "us-central1",
        "prefix": "anomaly-dev",
        "image": IMAGE,
        "bucket": "demo-project-anomaly-dev-dataflow",
        "service_account_email": "dataflow-worker@demo-project.iam.gserviceaccount.com",
        "subnetwork": SUBNET,
        "input_subscription": "projects/demo-project/subscriptions/events",
        "detections_topic": "projects/demo-project/topics/detections",
        "dead_letter_topic": "projects/demo-project/topics/dead-letter",
        "scored_events_table": "demo-project:anomaly.scored_events",
        "detections_table": "demo-project:anomaly.detections",
        "dead_letter_table": "demo-project:anomaly.dead_letter",
        "bigtable_project": "demo-project",
        "bigtable_instance": "anomaly-dev-features",
        "bigtable_table": "entities",
        "triage_mode": "none",
    }
    values.update(overrides)
    return StreamingJobArgs(**values)


def launch(args: StreamingJobArgs):
    return declare(
        lambda: StreamingJob("detector", args),
        lambda component: {"template_path": component.template_path, "job_id": component.job_id},
    )


def job_inputs(args: StreamingJobArgs):
    return launch(args).one(JOB).inputs


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    return load_template_metadata()


@pytest.mark.parametrize("mode", ["vertex", "worker", "none"])
def test_parameters_declared_in_metadata(mode, metadata):
    overrides: dict[str, Any] = {"triage_mode": mode}
    if mode == "vertex":
        overrides["vertex_endpoint"] = ENDPOINT
    if mode == "worker":
        overrides["machine_type"] = "g2-standard-8"
    declared = {parameter["name"] for parameter in metadata["parameters"]}

    parameters = job_inputs(make_args(**overrides))["parameters"]

    assert set(parameters) <= declared
    assert {"input_subscription", "detections_topic", "triage_handler"} <= set(parameters)


def test_security_settings():
    inputs = job_inputs(make_args(kms_key_name=KEY))

    assert inputs["ipConfiguration"] == "WORKER_IP_PRIVATE"
    assert inputs["enableStreamingEngine"] is True
    assert inputs["serviceAccountEmail"] == "dataflow-worker@demo-project.iam.gserviceaccount.com"
    assert inputs["subnetwork"] == SUBNET
    assert inputs["kmsKeyName"] == KEY
    assert inputs["onDelete"] == "drain"


def test_no_cmek_key_by_default():
    result = launch(make_args())

    assert "kmsKeyName" not in result.one(JOB).inputs
    assert "kmsKeyName" not in result.one(OBJECT).inputs


def test_cmek_key_on_spec_object():
    assert launch(make_args(kms_key_name=KEY)).one(OBJECT).inputs["kmsKeyName"] == KEY


def test_wiring_of_parameters():
    parameters = job_inputs(make_args(triage_max_per_second=2.5))["parameters"]

    assert parameters == {
        "input_subscription": "projects/demo-project/subscriptions/events",
        "detections_topic": "projects/demo-project/topics/detections",
        "dead_letter_topic": "projects/demo-project/topics/dead-letter",
        "scored_events_table": "demo-project:anomaly.scored_events",
        "detections_table": "demo-project:anomaly.detections",
        "dead_letter_table": "demo-project:anomaly.dead_letter",
        "bigtable_project": "demo-project",
        "bigtable_instance": "anomaly-dev-features",
        "bigtable_table": "entities",
        "triage_handler": "none",
        "triage_max_per_second": "2.5",
    }


@pytest.mark.parametrize(
    ("overrides", "handler", "experiments"),
    [
        ({"triage_mode": "none"}, "none", None),
        ({"triage_mode": "vertex", "vertex_endpoint": ENDPOINT}, "vertex", None),
        (
            {"triage_mode": "worker", "machine_type": "g2-standard-8"},
            "local",
            ["worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"],
        ),
        (
            {"triage_mode": "worker", "machine_type": "g2-standard-24", "gpus_per_worker": 2},
            "local",
            ["worker_accelerator=type:nvidia-l4;count:2;install-nvidia-driver"],
        ),
    ],
)
def test_triage_modes(overrides, handler, experiments):
    inputs = job_inputs(make_args(**overrides))

    assert inputs["parameters"]["triage_handler"] == handler
    assert inputs.get("additionalExperiments") == experiments
    assert ("vertex_endpoint" in inputs["parameters"]) is (handler == "vertex")


def test_vertex_endpoint_passed():
    inputs = job_inputs(make_args(triage_mode="vertex", vertex_endpoint=ENDPOINT))

    assert inputs["parameters"]["vertex_endpoint"] == ENDPOINT


@pytest.mark.parametrize(
    ("mode", "experiments"),
    [("exactly_once", None), ("at_least_once", [AT_LEAST_ONCE_EXPERIMENT])],
)
def test_streaming_mode(mode, experiments):
    assert job_inputs(make_args(streaming_mode=mode)).get("additionalExperiments") == experiments


def test_at_least_once_with_gpu():
    args = make_args(
        streaming_mode="at_least_once", triage_mode="worker", machine_type="g2-standard-4"
    )

    experiments = job_inputs(args)["additionalExperiments"]

    assert experiments[0] == AT_LEAST_ONCE_EXPERIMENT
    assert experiments[1].startswith("worker_accelerator=type:nvidia-l4;count:1")


def test_sizing_and_locations():
    inputs = job_inputs(make_args(machine_type="n2-standard-4", num_workers=2, max_workers=10))

    assert inputs["machineType"] == "n2-standard-4"
    assert inputs["numWorkers"] == 2
    assert inputs["maxWorkers"] == 10
    assert inputs["tempLocation"] == "gs://demo-project-anomaly-dev-dataflow/tmp"
    assert inputs["stagingLocation"] == "gs://demo-project-anomaly-dev-dataflow/staging"
    assert inputs["sdkContainerImage"] == IMAGE
    assert inputs["region"] == "us-central1"
    assert inputs["project"] == "demo-project"


def test_name_and_labels():
    inputs = job_inputs(make_args(labels={"environment": "dev", "app": "realtime-anomaly"}))

    assert inputs["name"] == "anomaly-dev-anomaly-detection"
    assert inputs["labels"] == {"environment": "dev", "app": "realtime-anomaly"}


def test_spec_content(metadata):
    result = launch(make_args())
    spec = result.one(OBJECT).inputs
    # pulumi_gcp marks BucketObject.content secret; the engine receives it wrapped.
    content = spec["content"]["value"]

    assert spec["bucket"] == "demo-project-anomaly-dev-dataflow"
    assert spec["contentType"] == "application/json"
    assert json.loads(content) == {
        "image": IMAGE,
        "sdkInfo": {"language": "PYTHON"},
        "metadata": metadata,
    }


def test_job_reads_spec_object():
    result = launch(make_args())
    spec_name = result.one(OBJECT).inputs["name"]
    expected_path = f"gs://demo-project-anomaly-dev-dataflow/{spec_name}"

    assert result.one(JOB).inputs["containerSpecGcsPath"] == expected_path
    assert result.outputs["template_path"] == expected_path
    assert spec_name.startswith("templates/anomaly-dev-anomaly-detection/")


def test_new_image_new_spec_path():
    first = launch(make_args()).one(OBJECT).inputs["name"]
    same = launch(make_args()).one(OBJECT).inputs["name"]
    other = launch(make_args(image=IMAGE.replace("1.0.0", "1.0.1"))).one(OBJECT).inputs["name"]

    assert first == same
    assert first != other


def test_waits_for_iam_grants():
    def build() -> StreamingJob:
        grant = gcp.pubsub.SubscriptionIAMMember(
            "subscriber",
            subscription="events",
            role="roles/pubsub.subscriber",
            member="serviceAccount:dataflow-worker@demo-project.iam.gserviceaccount.com",
        )
        return StreamingJob("detector", make_args(iam_grants=[grant]))

    result = declare(build)
    grant = result.one("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember")

    assert grant.urn in result.one(JOB).depends_on


@pytest.mark.parametrize(("protect", "policy"), [(True, "PREVENT"), (False, "DELETE")])
def test_protect_sets_both_guards(protect, policy):
    job = launch(make_args(protect=protect)).one(JOB)

    assert job.protect is protect
    assert job.inputs["deletionPolicy"] == policy


def test_output_inputs_resolved():
    def build() -> StreamingJob:
        subscription = gcp.pubsub.Subscription("events", name="events", topic="events-topic")
        return StreamingJob("detector", make_args(input_subscription=subscription.id))

    parameters = declare(build).one(JOB).inputs["parameters"]

    assert parameters["input_subscription"] == "projects/test-project/subscriptions/events"


def test_invalid_output_value_rejected():
    def build() -> pulumi.Input[str]:
        table = pulumi.Output.from_input("projects/p/datasets/d/tables/t")
        return checked_parameter("detections_table", table, (TABLE_PATTERN,))

    with pytest.raises(ValueError, match=r"parameter detections_table='projects/p/datasets"):
        declare(build, lambda value: {"value": value})


def test_bigquery_table_spec():
    def build() -> pulumi.Output[str]:
        table = gcp.bigquery.Table(
            "detections", project="demo-project", dataset_id="anomaly", table_id="detections"
        )
        return bigquery_table_spec(table)

    result = declare(build, lambda spec: {"spec": spec})

    assert result.outputs["spec"] == "demo-project:anomaly.detections"


@pytest.mark.parametrize(
    ("rate", "text"),
    [(1.0, "1"), (2.5, "2.5"), (0.00001, "0.00001"), (120.0, "120"), (0.1, "0.1")],
)
def test_format_rate(rate, text):
    assert format_rate(rate) == text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"triage_mode": "gpu"}, "triage_mode 'gpu' is invalid"),
        ({"streaming_mode": "exactly-once"}, "streaming_mode 'exactly-once' is invalid"),
        ({"triage_mode": "vertex"}, "vertex_endpoint is missing"),
        ({"vertex_endpoint": ENDPOINT}, "vertex_endpoint is set but triage_mode is 'none'"),
        ({"triage_mode": "worker"}, "machine_type 'n2-standard-2' has no L4 GPU"),
        (
            {"triage_mode": "worker", "machine_type": "g2-standard-8", "gpus_per_worker": 2},
            "gpus_per_worker 2 does not match machine_type 'g2-standard-8'",
        ),
        ({"num_workers": 0}, "num_workers must be >= 1, got 0"),
        ({"num_workers": 4, "max_workers": 2}, "max_workers 2 must be between num_workers (4)"),
        ({"max_workers": 1001}, "max_workers 1001 must be between num_workers (1) and 1000"),
        (
            {"triage_max_per_second": 0.0},
            "triage_max_per_second 0.0 is invalid; pass a finite number above 0 or omit it, "
            "because triage_mode 'none' makes no triage calls",
        ),
        (
            {"triage_max_per_second": float("nan")},
            "triage_max_per_second nan is invalid; pass a finite number above 0 or omit it",
        ),
        (
            {
                "triage_max_per_second": float("inf"),
                "triage_mode": "worker",
                "machine_type": "g2-standard-4",
            },
            "triage_max_per_second inf is invalid; pass a finite number above 0, "
            "or use triage_mode 'none' to turn triage off",
        ),
        ({"image": "anomaly"}, "image 'anomaly' is invalid"),
        ({"image": "gcr.io/p/anomaly"}, "image 'gcr.io/p/anomaly' is invalid"),
        ({"subnetwork": "anomaly-dev-workers"}, "subnetwork 'anomaly-dev-workers' is invalid"),
        ({"bucket": "gs://bucket"}, "bucket 'gs://bucket' is not a bucket name"),
    ],
)
def test_invalid_args_rejected(overrides, message):
    with pytest.raises(ValueError, match="invalid StreamingJobArgs") as error:
        make_args(**overrides)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "subnetwork",
    [
        SUBNET,
        "https://www.googleapis.com/compute/v1/projects/host/regions/us-central1/subnetworks/s",
    ],
)
def test_subnetwork_formats_accepted(subnetwork):
    assert make_args(subnetwork=subnetwork).subnetwork == subnetwork


def test_digest_image_accepted():
    image = "us-central1-docker.pkg.dev/p/r/anomaly@sha256:" + "a" * 64

    assert make_args(image=image).image == image


def test_undeclared_parameter_rejected(metadata):
    reduced = dict(metadata)
    reduced["parameters"] = [p for p in metadata["parameters"] if p["name"] != "bigtable_table"]
    args = make_args(template_metadata=reduced)

    with pytest.raises(ValueError, match=r"parameters \['bigtable_table'\] are not declared"):
        declare(lambda: StreamingJob("detector", args))


def test_unsupported_streaming_mode_rejected(metadata):
    exactly_once_only = {**metadata, "supportsAtLeastOnce": False}
    args = make_args(streaming_mode="at_least_once", template_metadata=exactly_once_only)

    with pytest.raises(ValueError, match="sets supportsAtLeastOnce to false"):
        declare(lambda: StreamingJob("detector", args))


def test_parameter_regex_checked():
    args = make_args(scored_events_table="anomaly.scored_events")

    with pytest.raises(ValueError, match=r"parameter scored_events_table='anomaly\.scored_events'"):
        declare(lambda: StreamingJob("detector", args))
