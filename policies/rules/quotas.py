"""Quota rules: GPU quota preferences stay under the configured maximum."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import get, violation
from policies.settings import Settings

RULES: list[Rule] = []

QUOTA_PREFERENCE = "gcp:cloudquota/sQuotaPreference:SQuotaPreference"


def is_gpu_quota(props: Mapping[str, object]) -> bool:
    """Return whether a quota preference is about GPUs (quota id or a gpu dimension)."""
    quota_id = str(get(props, "quotaId") or "")
    dimensions = get(props, "dimensions")
    gpu_dimension = isinstance(dimensions, Mapping) and any(
        "gpu" in str(key).lower() for key in dimensions
    )
    return "gpu" in quota_id.lower() or gpu_dimension


@rule(
    RULES,
    name="quotas-gpu-bounded",
    description="GPU quota preferences must not request more than the configured maximum.",
    severity=Severity.MEDIUM,
    types=[QUOTA_PREFERENCE],
    settings=["maxGpuQuota"],
)
def gpu_bounded(resource: Resource, settings: Settings) -> Iterator[str]:
    if not is_gpu_quota(resource.props):
        return
    # The API takes the preferred value as an int64 encoded in a string.
    value = get(resource.props, "quotaConfig.preferredValue")
    try:
        requested = int(str(value))
    except ValueError:
        requested = None
    if requested is None or not 0 <= requested <= settings.max_gpu_quota:
        yield violation(
            resource,
            "quotaConfig.preferredValue",
            value,
            f'a whole number from "0" to "{settings.max_gpu_quota}"',
        )
