"""Shared component conventions: names, labels and child options."""

from __future__ import annotations

import pulumi
import pytest

from infra.components.conventions import (
    NAME_RULES,
    child_opts,
    component_type,
    deletion_policy,
    label_errors,
    merge_labels,
    resource_name,
    stack_labels,
)
from tests.infra.mocks import declare


@pytest.mark.parametrize(
    ("kind", "parts", "expected"),
    [
        ("compute", ("anomaly-dev", "vpc"), "anomaly-dev-vpc"),
        ("bigquery_dataset", ("anomaly-dev", "analytics"), "anomaly_dev_analytics"),
        ("service_account", ("anomaly-prod", "dataflow"), "anomaly-prod-dataflow"),
        ("pubsub", ("anomaly-dev", "", "events"), "anomaly-dev-events"),
    ],
)
def test_resource_name_joins_parts(kind, parts, expected):
    assert resource_name(kind, *parts) == expected


@pytest.mark.parametrize(
    ("kind", "parts", "message"),
    [
        ("service_account", ("a-very-long-prefix-for-sa", "dataflow"), "GCP requires 6-30"),
        ("bigtable_instance", ("ab",), "GCP requires 6-33"),
        ("compute", ("Anomaly", "vpc"), "does not match"),
        ("bucket", ("x" * 60, "dataflow"), "GCP requires 3-63"),
    ],
)
def test_resource_name_rejects(kind, parts, message):
    with pytest.raises(ValueError, match=message):
        resource_name(kind, *parts)


def test_name_rules_cover_kinds():
    assert {"compute", "pubsub", "bucket", "service_account", "kms"} <= set(NAME_RULES)


def test_component_type_token():
    assert component_type("storage", "Storage") == "anomaly:storage:Storage"


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ({"Team": "x"}, "label key 'Team' is invalid"),
        ({"team": "Data"}, "label value 'Data' for key 'team' is invalid"),
        ({"k" * 64: "x"}, "is invalid"),
        ({f"k{index}": "v" for index in range(65)}, "at most 64"),
    ],
)
def test_label_errors(labels, fragment):
    errors = label_errors(labels)
    assert any(fragment in error for error in errors), errors


def test_merge_labels_later_wins():
    assert merge_labels({"a": "1", "b": "2"}, {"b": "3"}) == {"a": "1", "b": "3"}


def test_merge_labels_rejects_invalid():
    with pytest.raises(ValueError, match="label key 'A' is invalid"):
        merge_labels({"A": "1"})


def test_stack_labels_keep_reserved():
    labels = stack_labels("prod", {"environment": "qa", "team": "data"})
    assert labels == {"environment": "prod", "app": "realtime-anomaly", "team": "data"}


@pytest.mark.parametrize(("protect", "expected"), [(True, "PREVENT"), (False, "DELETE")])
def test_deletion_policy(protect, expected):
    assert deletion_policy(protect) == expected


class _Parent(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("test:index:Parent", name, None, opts)
        self.child = pulumi.CustomResource(
            "test:index:Child", f"{name}-child", {}, opts=child_opts(self, opts)
        )
        self.register_outputs({})


def test_child_opts_inherit_depends_on():
    def build() -> _Parent:
        first = pulumi.CustomResource("test:index:First", "first", {})
        return _Parent("parent", pulumi.ResourceOptions(depends_on=[first], protect=True))

    declared = declare(build)
    child = declared.one("test:index:Child")
    first = declared.one("test:index:First")
    assert first.urn in child.depends_on
    assert child.protect is False
