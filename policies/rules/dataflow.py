"""Dataflow rules for Flex Template (and classic) jobs: private, bounded, encrypted workers."""

from __future__ import annotations

import re
from collections.abc import Iterator

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import get, violation
from policies.settings import Settings

RULES: list[Rule] = []

FLEX_TEMPLATE_JOB = "gcp:dataflow/flexTemplateJob:FlexTemplateJob"
CLASSIC_JOB = "gcp:dataflow/job:Job"
JOB_TYPES = (FLEX_TEMPLATE_JOB, CLASSIC_JOB)

# The Compute Engine default service account, PROJECT_NUMBER-compute@..., is
# granted roles/editor when Compute Engine is enabled, unless an organization
# policy turns that automatic grant off.
DEFAULT_COMPUTE_ACCOUNT = re.compile(r"^\d+-compute@developer\.gserviceaccount\.com$")


@rule(
    RULES,
    name="dataflow-private-worker-ips",
    description="Dataflow workers must have private IP addresses only.",
    severity=Severity.HIGH,
    types=JOB_TYPES,
)
def private_worker_ips(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "ipConfiguration")
    if value != "WORKER_IP_PRIVATE":
        yield violation(resource, "ipConfiguration", value, '"WORKER_IP_PRIVATE"')


@rule(
    RULES,
    name="dataflow-subnetwork",
    description="Dataflow jobs must run in a named subnetwork of the stack's VPC.",
    severity=Severity.HIGH,
    types=JOB_TYPES,
)
def subnetwork(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "subnetwork")
    if not value:
        yield violation(
            resource, "subnetwork", value, "a subnetwork URL (regions/R/subnetworks/S or full URL)"
        )


@rule(
    RULES,
    name="dataflow-dedicated-service-account",
    description="Dataflow workers must run as a dedicated service account, not Compute default.",
    severity=Severity.HIGH,
    types=JOB_TYPES,
)
def dedicated_service_account(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "serviceAccountEmail")
    if not value or DEFAULT_COMPUTE_ACCOUNT.match(str(value)):
        yield violation(
            resource,
            "serviceAccountEmail",
            value,
            "a dedicated service account, not PROJECT_NUMBER-compute@developer.gserviceaccount.com",
        )


@rule(
    RULES,
    name="dataflow-cmek",
    description="Dataflow jobs must use a customer-managed key when CMEK is required.",
    severity=Severity.HIGH,
    types=JOB_TYPES,
    settings=["cmekRequired"],
)
def cmek(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "kmsKeyName")
    if settings.cmek_required and not value:
        yield violation(resource, "kmsKeyName", value, "a Cloud KMS key name")


@rule(
    RULES,
    name="dataflow-streaming-engine",
    description="Streaming Dataflow jobs must use Streaming Engine.",
    severity=Severity.MEDIUM,
    types=JOB_TYPES,
)
def streaming_engine(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "enableStreamingEngine")
    if value is not True:
        yield violation(resource, "enableStreamingEngine", value, "true")


@rule(
    RULES,
    name="dataflow-max-workers",
    description="Dataflow jobs must cap autoscaling with maxWorkers at most the configured bound.",
    severity=Severity.MEDIUM,
    types=JOB_TYPES,
    settings=["maxWorkers"],
)
def max_workers(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "maxWorkers")
    bounded = isinstance(value, int | float) and not isinstance(value, bool)
    if not bounded or not 1 <= value <= settings.max_workers:
        yield violation(
            resource, "maxWorkers", value, f"an integer from 1 to {settings.max_workers}"
        )
