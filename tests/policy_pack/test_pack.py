"""The CrossGuard adapter, run in policies/.venv with the real pulumi_policy SDK."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)
from pulumi_policy.policy import _POLICY_PACK_NAME_RE
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies import pack
from policies.config import CONFIG_DIR
from policies.rules import ALL_RULES

POLICIES_DIR = Path(__file__).resolve().parents[2] / "policies"
BY_NAME = {policy.name: policy for policy in pack.build_policies()}
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def validation_args(
    resource_type: str,
    props: dict[str, Any],
    *,
    protect: bool = False,
    config: dict[str, Any] | None = None,
) -> ResourceValidationArgs:
    """Build the arguments the SDK's analyzer passes to validate, with its unknown proxy."""
    options = PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )
    return ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(props),
        f"urn:pulumi:prod::anomaly::{resource_type}::res",
        "res",
        options,
        None,
        config,
    )


def report(policy_name: str, args: ResourceValidationArgs) -> list[str]:
    messages: list[str] = []
    BY_NAME[policy_name].validate(args, lambda message, urn=None: messages.append(message))
    return messages


def test_pack_builds_every_rule() -> None:
    policies = pack.build_policies()
    assert [policy.name for policy in policies] == [rule.name for rule in ALL_RULES]
    assert len(policies) >= 30


@pytest.mark.parametrize("rule", ALL_RULES, ids=[rule.name for rule in ALL_RULES])
def test_policy_metadata(rule: Any) -> None:
    policy = BY_NAME[rule.name]
    assert isinstance(policy, ResourceValidationPolicy)
    assert policy.description == rule.description
    assert policy.enforcement_level == EnforcementLevel(rule.enforcement.value)
    assert policy.severity == Severity(rule.severity.value)
    assert policy.has_validation()
    if rule.settings:
        assert policy.config_schema is not None
        assert set(policy.config_schema.properties) == set(rule.settings)
    else:
        assert policy.config_schema is None


def test_pack_name_valid() -> None:
    assert _POLICY_PACK_NAME_RE.match(pack.PACK_NAME)


@pytest.mark.parametrize(
    ("policy", "resource_type", "props", "options", "expected"),
    [
        (
            "storage-uniform-bucket-level-access",
            "gcp:storage/bucket:Bucket",
            {"uniformBucketLevelAccess": False},
            {},
            1,
        ),
        (
            "storage-uniform-bucket-level-access",
            "gcp:storage/bucket:Bucket",
            {"uniformBucketLevelAccess": True},
            {},
            0,
        ),
        (
            "network-firewall-no-public-admin-ports",
            "gcp:compute/firewall:Firewall",
            {"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["22"]}]},
            {},
            1,
        ),
        ("kms-key-protected", "gcp:kms/cryptoKey:CryptoKey", {}, {}, 1),
        ("kms-key-protected", "gcp:kms/cryptoKey:CryptoKey", {}, {"protect": True}, 0),
        (
            "kms-key-protected",
            "gcp:kms/cryptoKey:CryptoKey",
            {},
            {"config": {"deletionProtectionRequired": False}},
            0,
        ),
        (
            "dataflow-max-workers",
            "gcp:dataflow/flexTemplateJob:FlexTemplateJob",
            {"maxWorkers": 8},
            {"config": {"maxWorkers": 5}},
            1,
        ),
        ("pubsub-topic-cmek", "gcp:pubsub/topic:Topic", {}, {}, 1),
        ("pubsub-topic-cmek", "gcp:pubsub/topic:Topic", {}, {"config": {"cmekRequired": False}}, 0),
        ("pubsub-topic-cmek", "gcp:storage/bucket:Bucket", {}, {}, 0),
        (
            "iam-no-public-principals",
            "gcp:bigquery/datasetIamMember:DatasetIamMember",
            {"role": "roles/bigquery.dataViewer", "member": "allUsers"},
            {},
            1,
        ),
    ],
)
def test_validate_through_sdk(
    policy: str, resource_type: str, props: dict[str, Any], options: dict[str, Any], expected: int
) -> None:
    messages = report(policy, validation_args(resource_type, props, **options))
    assert len(messages) == expected
    for message in messages:
        assert "'res'" in message
        assert " object at 0x" not in message


def test_validate_unknown_raises() -> None:
    args = validation_args("gcp:pubsub/topic:Topic", {"kmsKeyName": UNKNOWN_STRING})
    with pytest.raises(UnknownValueError):
        report("pubsub-topic-cmek", args)


def test_validate_rejects_bad_config() -> None:
    args = validation_args(
        "gcp:dataflow/flexTemplateJob:FlexTemplateJob", {}, config={"maxWorkers": "ten"}
    )
    with pytest.raises(ValueError, match="maxWorkers is 'ten'"):
        report("dataflow-max-workers", args)


def test_import_starts_no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import grpc

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("importing policies.pack started a gRPC server")

    monkeypatch.setattr(grpc, "server", refuse)
    importlib.reload(pack)
    assert pack.build_policies()


def test_policy_yaml_runtime() -> None:
    document = yaml.safe_load((POLICIES_DIR / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert document["runtime"] == {"name": "python", "options": {"virtualenv": ".venv"}}
    assert document["description"]


_JSON_TYPES = {"boolean": bool, "integer": int, "array": list}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_config_matches_schemas(environment: str) -> None:
    document = json.loads((CONFIG_DIR / f"{environment}.json").read_text(encoding="utf-8"))
    for name, entry in document.items():
        if name == "all":
            assert EnforcementLevel(entry)
            continue
        schema = BY_NAME[name].config_schema
        assert schema is not None, name
        for key, value in entry.items():
            if key == "enforcementLevel":
                assert EnforcementLevel(value)
                continue
            assert key in schema.properties, f"{name}.{key}"
            assert isinstance(value, _JSON_TYPES[schema.properties[key]["type"]])
