"""Bigtable rules: deletion protection and CMEK on every cluster."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import NOT_SET, get, items, violation
from policies.settings import Settings

RULES: list[Rule] = []

INSTANCE = "gcp:bigtable/instance:Instance"


@rule(
    RULES,
    name="bigtable-deletion-protection",
    description="Bigtable instances must keep deletion protection where the environment requires.",
    severity=Severity.HIGH,
    types=[INSTANCE],
    settings=["deletionProtectionRequired"],
)
def deletion_protection(resource: Resource, settings: Settings) -> Iterator[str]:
    # The provider defaults deletionProtection to true; only false disables it.
    value = get(resource.props, "deletionProtection")
    if settings.deletion_protection_required and value is False:
        yield violation(resource, "deletionProtection", value, "true or not set")


@rule(
    RULES,
    name="bigtable-cmek",
    description="Every Bigtable cluster must use a customer-managed key when CMEK is required.",
    severity=Severity.HIGH,
    types=[INSTANCE],
    settings=["cmekRequired"],
)
def cmek(resource: Resource, settings: Settings) -> Iterator[str]:
    if not settings.cmek_required:
        return
    clusters = items(get(resource.props, "clusters"))
    if not clusters:
        yield violation(resource, "clusters", NOT_SET, "clusters each with a kmsKeyName")
    for index, cluster in enumerate(clusters):
        key = cluster.get("kmsKeyName") if isinstance(cluster, Mapping) else None
        if not key:
            yield violation(
                resource, f"clusters[{index}].kmsKeyName", key or NOT_SET, "a Cloud KMS key name"
            )
