"""Tests for the GPU quota preferences component."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.components.gpu_quota import (
    COMPUTE_ALL_GPUS_QUOTA_ID,
    COMPUTE_L4_QUOTA_ID,
    VERTEX_L4_QUOTA_ID,
    GpuQuota,
    GpuQuotaArgs,
)
from tests.infra.mocks import declare

PREFERENCE = "gcp:cloudquota/sQuotaPreference:SQuotaPreference"


def make_args(**overrides: Any) -> GpuQuotaArgs:
    values: dict[str, Any] = {
        "project": "demo-project",
        "region": "us-central1",
        "triage_mode": "vertex",
        "contact_email": "oncall@example.com",
        "prefix": "anomaly-dev",
    }
    values.update(overrides)
    return GpuQuotaArgs(**values)


def declared_preferences(args: GpuQuotaArgs) -> list[dict[str, Any]]:
    result = declare(lambda: GpuQuota("quota", args))
    return [resource.inputs for resource in result.of_type(PREFERENCE)]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"triage_mode": "vertex", "vertex_max_replicas": 3, "vertex_gpus_per_replica": 2}, 6),
        ({"triage_mode": "vertex"}, 1),
        ({"triage_mode": "worker", "dataflow_max_workers": 5, "dataflow_gpus_per_worker": 1}, 5),
        ({"triage_mode": "worker", "dataflow_max_workers": 4, "dataflow_gpus_per_worker": 2}, 8),
        ({"triage_mode": "none", "dataflow_max_workers": 4}, 0),
        ({"triage_mode": "worker", "dataflow_max_workers": 4, "preferred_gpus": 16}, 16),
    ],
)
def test_quota_value_from_counts(overrides, expected):
    assert make_args(**overrides).preferred_value() == expected


def test_vertex_requests_aiplatform_l4():
    preferences = declared_preferences(make_args(vertex_max_replicas=2))

    assert len(preferences) == 1
    preference = preferences[0]
    assert preference["service"] == "aiplatform.googleapis.com"
    assert preference["quotaId"] == VERTEX_L4_QUOTA_ID
    assert preference["dimensions"] == {"region": "us-central1"}
    assert preference["quotaConfig"]["preferredValue"] == "2"
    assert preference["parent"] == "projects/demo-project"


def test_worker_requests_compute_l4_and_global():
    args = make_args(triage_mode="worker", dataflow_max_workers=3, dataflow_gpus_per_worker=1)
    preferences = {item["quotaId"]: item for item in declared_preferences(args)}

    assert set(preferences) == {COMPUTE_L4_QUOTA_ID, COMPUTE_ALL_GPUS_QUOTA_ID}
    regional = preferences[COMPUTE_L4_QUOTA_ID]
    assert regional["service"] == "compute.googleapis.com"
    assert regional["dimensions"] == {"region": "us-central1"}
    assert regional["quotaConfig"]["preferredValue"] == "3"
    all_regions = preferences[COMPUTE_ALL_GPUS_QUOTA_ID]
    assert "dimensions" not in all_regions
    assert all_regions["quotaConfig"]["preferredValue"] == "3"


def test_none_declares_nothing():
    result = declare(lambda: GpuQuota("quota", make_args(triage_mode="none")))

    assert result.of_type(PREFERENCE) == []
    assert result.component.requested_gpus == 0


@pytest.mark.parametrize("mode", ["vertex", "worker"])
def test_contact_and_justification_set(mode):
    for preference in declared_preferences(make_args(triage_mode=mode)):
        assert preference["contactEmail"] == "oncall@example.com"
        assert "L4" in preference["justification"]
        assert "ignoreSafetyChecks" not in preference


def test_preference_ids_deterministic():
    args = make_args(triage_mode="worker")
    first = sorted(item["name"] for item in declared_preferences(args))
    second = sorted(item["name"] for item in declared_preferences(args))

    assert first == second
    assert first == [
        "anomaly-dev-compute-gpus-all-regions",
        "anomaly-dev-compute-l4-us-central1",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"triage_mode": "gpu"}, "triage_mode 'gpu' is invalid"),
        ({"contact_email": "oncall"}, "contact_email 'oncall' is not an email address"),
        ({"vertex_max_replicas": 0}, "vertex_max_replicas must be an integer >= 1, got 0"),
        ({"dataflow_gpus_per_worker": 1.5}, "dataflow_gpus_per_worker must be an integer >= 1"),
        ({"dataflow_max_workers": True}, "dataflow_max_workers must be an integer >= 1, got True"),
        ({"preferred_gpus": 0}, "preferred_gpus must be an integer >= 1 or None, got 0"),
        ({"justification": "  "}, "justification is empty"),
    ],
)
def test_invalid_args_rejected(overrides, message):
    with pytest.raises(ValueError, match="invalid GpuQuotaArgs") as error:
        make_args(**overrides)
    assert message in str(error.value)


def test_long_prefix_rejected():
    args = make_args(prefix="a" * 60)

    with pytest.raises(ValueError, match="Shorten the prefix"):
        declare(lambda: GpuQuota("quota", args))


def test_args_frozen():
    args = make_args()

    with pytest.raises(dataclasses.FrozenInstanceError):
        args.region = "europe-west4"  # type: ignore[misc]
