"""Whole-stack wiring: dependencies, labels, protection and the job's template parameters."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.offline import DeclaredResource
from pipeline.template_metadata import template_metadata

DATA_TYPES = {
    "gcp:bigquery/dataset:Dataset",
    "gcp:bigquery/table:Table",
    "gcp:bigtable/instance:Instance",
    "gcp:bigtable/table:Table",
    "gcp:storage/bucket:Bucket",
    "gcp:kms/keyRing:KeyRing",
    "gcp:kms/cryptoKey:CryptoKey",
}
"""Data-bearing resource types: protected in prod, destroyable in dev."""

SERVICE_TYPE = "gcp:projects/service:Service"


def of_type(resources: list[DeclaredResource], type_token: str) -> list[DeclaredResource]:
    return [r for r in resources if r.type == type_token]


def one(resources: list[DeclaredResource], type_token: str) -> DeclaredResource:
    (match,) = of_type(resources, type_token)
    return match


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_resources_wait_for_apis(stack, stacks):
    resources = stacks[stack]
    services = {r.urn for r in of_type(resources, SERVICE_TYPE)}
    for resource in resources:
        if resource.custom and resource.type != SERVICE_TYPE:
            assert services & set(resource.depends_on), f"{resource.name} ignores the API services"


LABEL_FIELDS = {
    "gcp:pubsub/topic:Topic": "labels",
    "gcp:pubsub/subscription:Subscription": "labels",
    "gcp:bigquery/dataset:Dataset": "labels",
    "gcp:bigquery/table:Table": "labels",
    "gcp:bigtable/instance:Instance": "labels",
    "gcp:storage/bucket:Bucket": "labels",
    "gcp:artifactregistry/repository:Repository": "labels",
    "gcp:kms/cryptoKey:CryptoKey": "labels",
    "gcp:dataflow/flexTemplateJob:FlexTemplateJob": "labels",
    "gcp:monitoring/alertPolicy:AlertPolicy": "userLabels",
    "gcp:monitoring/notificationChannel:NotificationChannel": "userLabels",
}
"""Resource types of the stack that take user labels, and the input that contains them."""


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_labelled_resources_carry_stack_labels(stack, stacks):
    labelled = [r for r in stacks[stack] if r.type in LABEL_FIELDS]
    assert len(labelled) >= 24
    for resource in labelled:
        labels = resource.inputs.get(LABEL_FIELDS[resource.type], {})
        assert labels.get("environment") == stack, resource.name
        assert labels.get("app") == "realtime-anomaly", resource.name


@pytest.mark.parametrize(("stack", "protected"), [("dev", False), ("prod", True)])
def test_data_resources_protection(stack, protected, stacks):
    data = [r for r in stacks[stack] if r.type in DATA_TYPES]
    assert len(data) >= 7 if protected else len(data) >= 6
    for resource in data:
        assert resource.protect is protected, resource.name
        if "deletionPolicy" in resource.inputs:
            assert resource.inputs["deletionPolicy"] == ("PREVENT" if protected else "DELETE")


def test_prod_keys_used_where_data_lives(prod_resources):
    key_prefix = "projects/anomaly-blueprint-prod/locations/us-central1/keyRings/"
    checks: dict[str, Callable[[DeclaredResource], str]] = {
        "gcp:pubsub/topic:Topic": lambda r: r.inputs["kmsKeyName"],
        "gcp:bigquery/table:Table": lambda r: r.inputs["encryptionConfiguration"]["kmsKeyName"],
        "gcp:bigtable/instance:Instance": lambda r: r.inputs["clusters"][0]["kmsKeyName"],
        "gcp:storage/bucket:Bucket": lambda r: r.inputs["encryption"]["defaultKmsKeyName"],
        "gcp:artifactregistry/repository:Repository": lambda r: r.inputs["kmsKeyName"],
        "gcp:dataflow/flexTemplateJob:FlexTemplateJob": lambda r: r.inputs["kmsKeyName"],
    }
    for type_token, key_of in checks.items():
        for resource in of_type(prod_resources, type_token):
            assert key_of(resource).startswith(key_prefix), resource.name


def test_encrypted_resources_wait_for_key_grants(prod_resources):
    grants = {
        r.urn for r in of_type(prod_resources, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    }
    for type_token in ("gcp:pubsub/topic:Topic", "gcp:bigtable/instance:Instance"):
        for resource in of_type(prod_resources, type_token):
            assert grants <= set(resource.depends_on), resource.name


def test_dev_has_no_keys(dev_resources):
    assert of_type(dev_resources, "gcp:kms/cryptoKey:CryptoKey") == []
    assert all("kmsKeyName" not in r.inputs for r in dev_resources)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_job_parameters_declared_in_metadata(stack, stacks):
    declared = {parameter["name"] for parameter in template_metadata()["parameters"]}
    job = one(stacks[stack], "gcp:dataflow/flexTemplateJob:FlexTemplateJob")
    assert set(job.inputs["parameters"]) <= declared


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_job_passes_required_parameters(stack, stacks):
    required = {p["name"] for p in template_metadata()["parameters"] if not p.get("isOptional")}
    job = one(stacks[stack], "gcp:dataflow/flexTemplateJob:FlexTemplateJob")
    assert required
    assert required <= set(job.inputs["parameters"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_job_waits_for_worker_grants(stack, stacks):
    resources = stacks[stack]
    job = one(resources, "gcp:dataflow/flexTemplateJob:FlexTemplateJob")
    account = one(resources, "gcp:serviceaccount/account:Account")
    email = f"{account.inputs['accountId']}@anomaly-blueprint-{stack}.iam.gserviceaccount.com"
    member = f"serviceAccount:{email}"
    grants = [r for r in resources if r.inputs.get("member") == member]
    assert len(grants) == (12 if stack == "prod" else 11)
    assert {g.urn for g in grants} <= set(job.depends_on)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_job_reads_pipeline_subscription(stack, stacks):
    resources = stacks[stack]
    job = one(resources, "gcp:dataflow/flexTemplateJob:FlexTemplateJob")
    subscriptions = {
        r.inputs["name"]: r for r in of_type(resources, "gcp:pubsub/subscription:Subscription")
    }
    reader = subscriptions[f"anomaly-{stack}-events-pipeline"]
    assert job.inputs["parameters"]["input_subscription"] == (
        f"projects/anomaly-blueprint-{stack}/subscriptions/{reader.inputs['name']}"
    )
    assert (
        reader.inputs["topic"]
        == f"projects/anomaly-blueprint-{stack}/topics/anomaly-{stack}-events"
    )
