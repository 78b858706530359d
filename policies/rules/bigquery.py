"""BigQuery rules: CMEK on datasets and tables, table deletion protection, no public access."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import get, items, violation
from policies.settings import Settings

RULES: list[Rule] = []

DATASET = "gcp:bigquery/dataset:Dataset"
TABLE = "gcp:bigquery/table:Table"
DATASET_ACCESS = "gcp:bigquery/datasetAccess:DatasetAccess"

PUBLIC_PRINCIPALS = ("allUsers", "allAuthenticatedUsers")


@rule(
    RULES,
    name="bigquery-dataset-cmek",
    description="Datasets must default to a customer-managed key when CMEK is required.",
    severity=Severity.HIGH,
    types=[DATASET],
    settings=["cmekRequired"],
)
def dataset_cmek(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "defaultEncryptionConfiguration.kmsKeyName")
    if settings.cmek_required and not value:
        yield violation(
            resource, "defaultEncryptionConfiguration.kmsKeyName", value, "a Cloud KMS key name"
        )


@rule(
    RULES,
    name="bigquery-table-cmek",
    description="Tables must name a customer-managed key when CMEK is required.",
    severity=Severity.HIGH,
    types=[TABLE],
    settings=["cmekRequired"],
)
def table_cmek(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "encryptionConfiguration.kmsKeyName")
    if settings.cmek_required and not value:
        yield violation(
            resource, "encryptionConfiguration.kmsKeyName", value, "a Cloud KMS key name"
        )


@rule(
    RULES,
    name="bigquery-table-deletion-protection",
    description="Tables must keep deletion protection on where the environment requires it.",
    severity=Severity.HIGH,
    types=[TABLE],
    settings=["deletionProtectionRequired"],
)
def table_deletion_protection(resource: Resource, settings: Settings) -> Iterator[str]:
    # The provider defaults deletionProtection to true, so only an explicit
    # false turns it off.
    value = get(resource.props, "deletionProtection")
    if settings.deletion_protection_required and value is False:
        yield violation(resource, "deletionProtection", value, "true or not set")


def _public_entry(entry: Mapping[str, Any]) -> str | None:
    """Return the property of an access entry that grants public access, if any."""
    if entry.get("specialGroup") in PUBLIC_PRINCIPALS:
        return "specialGroup"
    if entry.get("iamMember") in PUBLIC_PRINCIPALS:
        return "iamMember"
    return None


@rule(
    RULES,
    name="bigquery-dataset-no-public-access",
    description="Dataset access entries must not grant allUsers or allAuthenticatedUsers.",
    severity=Severity.CRITICAL,
    types=[DATASET, DATASET_ACCESS],
)
def dataset_no_public_access(resource: Resource, settings: Settings) -> Iterator[str]:
    if resource.type == DATASET_ACCESS:
        field = _public_entry(resource.props)
        if field is not None:
            yield violation(
                resource, field, resource.props[field], "a named user, group or service account"
            )
        return

    for index, entry in enumerate(items(get(resource.props, "accesses"))):
        if not isinstance(entry, Mapping):
            continue
        field = _public_entry(entry)
        if field is not None:
            yield violation(
                resource,
                f"accesses[{index}].{field}",
                entry[field],
                "a named user, group or service account",
            )
