"""Vertex AI rules: private endpoints, bounded replica counts and CMEK."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import NOT_SET, get, violation
from policies.settings import Settings

RULES: list[Rule] = []

ENDPOINT = "gcp:vertex/aiEndpoint:AiEndpoint"
MODEL_GARDEN_ENDPOINT = (
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"
)
RESOURCE_POOL = "gcp:vertex/aiDeploymentResourcePool:AiDeploymentResourcePool"

# Path of the replica counts inside each type's inputs.
_DEDICATED_RESOURCES = {
    MODEL_GARDEN_ENDPOINT: "deployConfig.dedicatedResources",
    RESOURCE_POOL: "dedicatedResources",
}


@rule(
    RULES,
    name="vertex-endpoint-private",
    description="Vertex AI endpoints must be private (VPC peering or Private Service Connect).",
    severity=Severity.HIGH,
    types=[ENDPOINT, MODEL_GARDEN_ENDPOINT],
    settings=["privateEndpointRequired"],
)
def endpoint_private(resource: Resource, settings: Settings) -> Iterator[str]:
    if not settings.private_endpoint_required:
        return
    if resource.type == ENDPOINT:
        network = get(resource.props, "network")
        psc = get(resource.props, "privateServiceConnectConfig.enablePrivateServiceConnect")
        if not network and psc is not True:
            yield violation(
                resource,
                "network / privateServiceConnectConfig.enablePrivateServiceConnect",
                psc if psc is not NOT_SET else network,
                "a VPC network (projects/N/global/networks/V) or Private Service Connect on",
            )
        return

    path = "endpointConfig.privateServiceConnectConfig.enablePrivateServiceConnect"
    psc = get(resource.props, path)
    if psc is not True:
        yield violation(resource, path, psc, "true")


@rule(
    RULES,
    name="vertex-replica-bounds",
    description="Vertex AI deployments must bound replicas between 1 and the configured maximum.",
    severity=Severity.MEDIUM,
    types=list(_DEDICATED_RESOURCES),
    settings=["maxReplicas"],
)
def replica_bounds(resource: Resource, settings: Settings) -> Iterator[str]:
    path = _DEDICATED_RESOURCES[resource.type]
    resources = get(resource.props, path)
    if not isinstance(resources, Mapping):
        yield violation(
            resource, path, resources, "dedicated resources with minReplicaCount/maxReplicaCount"
        )
        return

    low = resources.get("minReplicaCount")
    # Vertex AI uses minReplicaCount as the maximum when maxReplicaCount is absent.
    high = resources.get("maxReplicaCount", low)
    expected = f"an integer from 1 to {settings.max_replicas}"
    for field, value in (("minReplicaCount", low), ("maxReplicaCount", high)):
        if not _within(value, settings.max_replicas):
            found = NOT_SET if value is None else value
            yield violation(resource, f"{path}.{field}", found, expected)


def _within(value: object, maximum: int) -> bool:
    """Return whether ``value`` is a number from 1 to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 1 <= value <= maximum


@rule(
    RULES,
    name="vertex-endpoint-cmek",
    description="Vertex AI endpoints must use a customer-managed key when CMEK is required.",
    severity=Severity.HIGH,
    types=[ENDPOINT],
    settings=["cmekRequired"],
)
def endpoint_cmek(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "encryptionSpec.kmsKeyName")
    if settings.cmek_required and not value:
        yield violation(resource, "encryptionSpec.kmsKeyName", value, "a Cloud KMS key name")
