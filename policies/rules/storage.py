"""Cloud Storage rules: uniform access, public access prevention, versioning and CMEK."""

from __future__ import annotations

from collections.abc import Iterator

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import get, label_value, violation
from policies.settings import Settings

RULES: list[Rule] = []

BUCKET = "gcp:storage/bucket:Bucket"


@rule(
    RULES,
    name="storage-uniform-bucket-level-access",
    description="Buckets must use uniform bucket-level access, so IAM alone controls access.",
    severity=Severity.HIGH,
    types=[BUCKET],
)
def uniform_access(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "uniformBucketLevelAccess")
    if value is not True:
        yield violation(resource, "uniformBucketLevelAccess", value, "true")


@rule(
    RULES,
    name="storage-public-access-prevention",
    description="Buckets must enforce public access prevention.",
    severity=Severity.CRITICAL,
    types=[BUCKET],
)
def public_access_prevention(resource: Resource, settings: Settings) -> Iterator[str]:
    # "inherited" defers to an organization policy the stack cannot see, so
    # only an explicit "enforced" passes.
    value = get(resource.props, "publicAccessPrevention")
    if value != "enforced":
        yield violation(resource, "publicAccessPrevention", value, '"enforced"')


@rule(
    RULES,
    name="storage-versioning",
    description="Data buckets must keep object versions; scratch buckets are exempt by label.",
    severity=Severity.MEDIUM,
    types=[BUCKET],
    settings=["unversionedBucketPurposes"],
)
def versioning(resource: Resource, settings: Settings) -> Iterator[str]:
    purpose = label_value(resource.props, "purpose")
    if purpose in settings.unversioned_bucket_purposes:
        return
    value = get(resource.props, "versioning.enabled")
    if value is not True:
        exempt = ", ".join(settings.unversioned_bucket_purposes) or "none configured"
        yield violation(
            resource,
            "versioning.enabled",
            value,
            f"true, or a 'purpose' label marking a scratch bucket ({exempt})",
        )


@rule(
    RULES,
    name="storage-bucket-cmek",
    description="Buckets must encrypt objects with a customer-managed key when CMEK is required.",
    severity=Severity.HIGH,
    types=[BUCKET],
    settings=["cmekRequired"],
)
def bucket_cmek(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "encryption.defaultKmsKeyName")
    if settings.cmek_required and not value:
        yield violation(resource, "encryption.defaultKmsKeyName", value, "a Cloud KMS key name")
