"""Each rule on a failing and a passing resource, through the gate's evaluate()."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from policies.config import PackConfig
from policies.evaluate import evaluate
from policies.model import Enforcement, Resource
from policies.rules import ALL_RULES, RULES_BY_NAME
from policies.settings import Settings

FIREWALL = "gcp:compute/firewall:Firewall"
NETWORK = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
NAT = "gcp:compute/routerNat:RouterNat"
BUCKET = "gcp:storage/bucket:Bucket"
TOPIC = "gcp:pubsub/topic:Topic"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
DATASET = "gcp:bigquery/dataset:Dataset"
TABLE = "gcp:bigquery/table:Table"
DATASET_ACCESS = "gcp:bigquery/datasetAccess:DatasetAccess"
BIGTABLE = "gcp:bigtable/instance:Instance"
KEY = "gcp:kms/cryptoKey:CryptoKey"
FLEX = "gcp:dataflow/flexTemplateJob:FlexTemplateJob"
ENDPOINT = "gcp:vertex/aiEndpoint:AiEndpoint"
GARDEN = "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"
POOL = "gcp:vertex/aiDeploymentResourcePool:AiDeploymentResourcePool"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
PROJECT_BINDING = "gcp:projects/iAMBinding:IAMBinding"
PROJECT_POLICY = "gcp:projects/iAMPolicy:IAMPolicy"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
DATASET_MEMBER = "gcp:bigquery/datasetIamMember:DatasetIamMember"
TOPIC_BINDING = "gcp:pubsub/topicIAMBinding:TopicIAMBinding"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
SA_KEY = "gcp:serviceaccount/key:Key"
QUOTA = "gcp:cloudquota/sQuotaPreference:SQuotaPreference"

KMS = "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"
RUNNER = "serviceAccount:runner@p.iam.gserviceaccount.com"
LABELS = {"environment": "prod", "app": "realtime-anomaly"}
FLEX_OK = {
    "ipConfiguration": "WORKER_IP_PRIVATE",
    "subnetwork": "regions/us-central1/subnetworks/workers",
    "serviceAccountEmail": "dataflow-worker@p.iam.gserviceaccount.com",
    "kmsKeyName": KMS,
    "enableStreamingEngine": True,
    "maxWorkers": 5,
    "labels": LABELS,
}
OPEN_SSH = {"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["22"]}]}
POLICY_DATA = '{"bindings": [{"role": "%s", "members": ["%s"]}]}'


@dataclass(frozen=True)
class Case:
    """One resource, the rule under test, and whether that rule must report it."""

    rule: str
    type: str
    props: dict[str, Any]
    fails: bool
    protect: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


def fail(rule: str, type_: str, props: dict[str, Any], **kwargs: Any) -> Case:
    return Case(rule, type_, props, True, **kwargs)


def ok(rule: str, type_: str, props: dict[str, Any], **kwargs: Any) -> Case:
    return Case(rule, type_, props, False, **kwargs)


CASES: list[Case] = [
    # network
    fail("network-firewall-no-public-ingress", FIREWALL, OPEN_SSH),
    fail(
        "network-firewall-no-public-ingress",
        FIREWALL,
        {"sourceRanges": ["::/0"], "allows": [{"protocol": "tcp", "ports": ["443"]}]},
    ),
    ok(
        "network-firewall-no-public-ingress",
        FIREWALL,
        {"sourceRanges": ["35.235.240.0/20"], "allows": [{"protocol": "tcp", "ports": ["22"]}]},
    ),
    ok(
        "network-firewall-no-public-ingress",
        FIREWALL,
        {"sourceRanges": ["0.0.0.0/0"], "denies": [{"protocol": "all"}]},
    ),
    fail("network-firewall-no-public-ingress", FIREWALL, {"allows": [{"protocol": "tcp"}]}),
    ok(
        "network-firewall-no-public-ingress",
        FIREWALL,
        {
            "sourceServiceAccounts": ["runner@p.iam.gserviceaccount.com"],
            "allows": [{"protocol": "tcp"}],
        },
    ),
    ok(
        "network-firewall-no-public-ingress",
        FIREWALL,
        {
            "direction": "EGRESS",
            "destinationRanges": ["0.0.0.0/0"],
            "allows": [{"protocol": "tcp"}],
        },
    ),
    fail("network-firewall-no-public-admin-ports", FIREWALL, OPEN_SSH),
    fail(
        "network-firewall-no-public-admin-ports",
        FIREWALL,
        {"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["3000-4000"]}]},
    ),
    fail(
        "network-firewall-no-public-admin-ports",
        FIREWALL,
        {"sourceRanges": ["::/0"], "allows": [{"protocol": "all"}]},
    ),
    ok(
        "network-firewall-no-public-admin-ports",
        FIREWALL,
        {"sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["443"]}]},
    ),
    fail("network-firewall-logging", FIREWALL, {"sourceRanges": ["10.0.0.0/8"]}),
    ok("network-firewall-logging", FIREWALL, {"logConfig": {"metadata": "INCLUDE_ALL_METADATA"}}),
    fail("network-vpc-custom-mode", NETWORK, {}),
    fail("network-vpc-custom-mode", NETWORK, {"autoCreateSubnetworks": True}),
    ok("network-vpc-custom-mode", NETWORK, {"autoCreateSubnetworks": False}),
    fail("network-subnet-private-google-access", SUBNET, {"privateIpGoogleAccess": False}),
    ok("network-subnet-private-google-access", SUBNET, {"privateIpGoogleAccess": True}),
    ok("network-subnet-private-google-access", SUBNET, {"purpose": "REGIONAL_MANAGED_PROXY"}),
    fail("network-subnet-flow-logs", SUBNET, {"privateIpGoogleAccess": True}),
    ok(
        "network-subnet-flow-logs", SUBNET, {"logConfig": {"aggregationInterval": "INTERVAL_5_SEC"}}
    ),
    fail("network-nat-logging", NAT, {}),
    fail("network-nat-logging", NAT, {"logConfig": {"enable": False, "filter": "ALL"}}),
    ok("network-nat-logging", NAT, {"logConfig": {"enable": True, "filter": "ERRORS_ONLY"}}),
    # storage
    fail("storage-uniform-bucket-level-access", BUCKET, {}),
    ok("storage-uniform-bucket-level-access", BUCKET, {"uniformBucketLevelAccess": True}),
    fail("storage-public-access-prevention", BUCKET, {"publicAccessPrevention": "inherited"}),
    ok("storage-public-access-prevention", BUCKET, {"publicAccessPrevention": "enforced"}),
    fail("storage-versioning", BUCKET, {"versioning": {"enabled": False}}),
    fail(
        "storage-versioning",
        BUCKET,
        {"labels": {"purpose": "staging"}},
        settings={"unversioned_bucket_purposes": ()},
    ),
    ok("storage-versioning", BUCKET, {"versioning": {"enabled": True}}),
    ok("storage-versioning", BUCKET, {"labels": {"purpose": "temp"}}),
    fail("storage-bucket-cmek", BUCKET, {"encryption": {}}),
    ok("storage-bucket-cmek", BUCKET, {"encryption": {"defaultKmsKeyName": KMS}}),
    ok("storage-bucket-cmek", BUCKET, {}, settings={"cmek_required": False}),
    # iam (all services)
    fail("iam-no-public-principals", BUCKET_MEMBER, {"role": "roles/x", "member": "allUsers"}),
    fail(
        "iam-no-public-principals",
        TOPIC_BINDING,
        {"role": "roles/pubsub.subscriber", "members": ["allAuthenticatedUsers"]},
    ),
    fail(
        "iam-no-public-principals",
        DATASET_MEMBER,
        {"role": "roles/bigquery.dataViewer", "member": "allUsers"},
    ),
    fail(
        "iam-no-public-principals", PROJECT_POLICY, {"policyData": POLICY_DATA % ("r", "allUsers")}
    ),
    fail("iam-no-public-principals", PROJECT_POLICY, {"policyData": "{not json"}),
    ok("iam-no-public-principals", BUCKET_MEMBER, {"role": "roles/x", "member": RUNNER}),
    fail("iam-no-basic-roles", PROJECT_MEMBER, {"role": "roles/editor", "member": RUNNER}),
    fail("iam-no-basic-roles", BUCKET_MEMBER, {"role": "roles/viewer", "member": RUNNER}),
    fail(
        "iam-no-basic-roles", PROJECT_POLICY, {"policyData": POLICY_DATA % ("roles/owner", RUNNER)}
    ),
    ok("iam-no-basic-roles", PROJECT_MEMBER, {"role": "roles/dataflow.worker", "member": RUNNER}),
    fail("iam-no-service-account-keys", SA_KEY, {"serviceAccountId": "runner"}),
    ok("iam-no-service-account-keys", SA_MEMBER, {"role": "roles/iam.serviceAccountUser"}),
    fail(
        "iam-no-project-service-account-impersonation",
        PROJECT_MEMBER,
        {"role": "roles/iam.serviceAccountUser", "member": RUNNER},
    ),
    fail(
        "iam-no-project-service-account-impersonation",
        PROJECT_BINDING,
        {"role": "roles/iam.serviceAccountTokenCreator", "members": [RUNNER]},
    ),
    ok(
        "iam-no-project-service-account-impersonation",
        SA_MEMBER,
        {"role": "roles/iam.serviceAccountUser", "member": RUNNER},
    ),
    fail(
        "iam-no-project-admin-for-service-accounts",
        PROJECT_MEMBER,
        {"role": "roles/storage.admin", "member": RUNNER},
    ),
    fail(
        "iam-no-project-admin-for-service-accounts",
        PROJECT_POLICY,
        {"policyData": POLICY_DATA % ("roles/bigquery.dataAdmin", RUNNER)},
    ),
    ok(
        "iam-no-project-admin-for-service-accounts",
        PROJECT_MEMBER,
        {"role": "roles/storage.admin", "member": "group:ops@example.com"},
    ),
    ok(
        "iam-no-project-admin-for-service-accounts",
        BUCKET_MEMBER,
        {"role": "roles/storage.admin", "member": RUNNER},
    ),
    # pubsub
    fail("pubsub-subscription-dead-letter", SUBSCRIPTION, {}),
    ok(
        "pubsub-subscription-dead-letter",
        SUBSCRIPTION,
        {"deadLetterPolicy": {"deadLetterTopic": "projects/p/topics/dlq"}},
    ),
    ok(
        "pubsub-subscription-dead-letter",
        SUBSCRIPTION,
        {"labels": {"purpose": "dead-letter-review"}},
    ),
    fail(
        "pubsub-subscription-dead-letter",
        SUBSCRIPTION,
        {"labels": {"purpose": "dead-letter-review"}},
        settings={"dead_letter_exempt_purposes": ()},
    ),
    ok(
        "pubsub-subscription-delivery-attempts",
        SUBSCRIPTION,
        {"labels": {"purpose": "dead-letter-review"}},
    ),
    fail("pubsub-subscription-delivery-attempts", SUBSCRIPTION, {"deadLetterPolicy": {}}),
    fail(
        "pubsub-subscription-delivery-attempts",
        SUBSCRIPTION,
        {"deadLetterPolicy": {"maxDeliveryAttempts": 101}},
    ),
    ok(
        "pubsub-subscription-delivery-attempts",
        SUBSCRIPTION,
        {"deadLetterPolicy": {"maxDeliveryAttempts": 5}},
    ),
    fail("pubsub-subscription-retry-policy", SUBSCRIPTION, {}),
    ok(
        "pubsub-subscription-retry-policy", SUBSCRIPTION, {"retryPolicy": {"minimumBackoff": "10s"}}
    ),
    fail("pubsub-topic-cmek", TOPIC, {}),
    ok("pubsub-topic-cmek", TOPIC, {"kmsKeyName": KMS}),
    ok("pubsub-topic-cmek", TOPIC, {}, settings={"cmek_required": False}),
    # bigquery
    fail("bigquery-dataset-cmek", DATASET, {}),
    ok("bigquery-dataset-cmek", DATASET, {"defaultEncryptionConfiguration": {"kmsKeyName": KMS}}),
    fail("bigquery-table-cmek", TABLE, {"encryptionConfiguration": {}}),
    ok("bigquery-table-cmek", TABLE, {"encryptionConfiguration": {"kmsKeyName": KMS}}),
    fail("bigquery-table-deletion-protection", TABLE, {"deletionProtection": False}),
    ok("bigquery-table-deletion-protection", TABLE, {}),
    ok(
        "bigquery-table-deletion-protection",
        TABLE,
        {"deletionProtection": False},
        settings={"deletion_protection_required": False},
    ),
    fail(
        "bigquery-dataset-no-public-access",
        DATASET,
        {"accesses": [{"role": "READER", "specialGroup": "allAuthenticatedUsers"}]},
    ),
    fail(
        "bigquery-dataset-no-public-access",
        DATASET,
        {"accesses": [{"role": "READER", "iamMember": "allUsers"}]},
    ),
    fail("bigquery-dataset-no-public-access", DATASET_ACCESS, {"iamMember": "allUsers"}),
    ok(
        "bigquery-dataset-no-public-access",
        DATASET,
        {"accesses": [{"role": "OWNER", "specialGroup": "projectOwners"}]},
    ),
    # bigtable
    fail("bigtable-deletion-protection", BIGTABLE, {"deletionProtection": False}),
    ok("bigtable-deletion-protection", BIGTABLE, {"deletionProtection": True}),
    fail("bigtable-cmek", BIGTABLE, {"clusters": [{"clusterId": "c1"}]}),
    fail("bigtable-cmek", BIGTABLE, {}),
    ok("bigtable-cmek", BIGTABLE, {"clusters": [{"clusterId": "c1", "kmsKeyName": KMS}]}),
    # kms
    fail("kms-rotation-period", KEY, {"rotationPeriod": "7776001s"}),
    fail("kms-rotation-period", KEY, {}),
    ok("kms-rotation-period", KEY, {"rotationPeriod": "7776000s"}),
    fail("kms-key-protected", KEY, {}),
    fail("kms-key-protected", KEY, {"deletionPolicy": "DELETE"}),
    ok("kms-key-protected", KEY, {}, protect=True),
    ok("kms-key-protected", KEY, {"deletionPolicy": "PREVENT"}),
    ok("kms-key-protected", KEY, {}, settings={"deletion_protection_required": False}),
    # dataflow
    fail("dataflow-private-worker-ips", FLEX, {**FLEX_OK, "ipConfiguration": "WORKER_IP_PUBLIC"}),
    ok("dataflow-private-worker-ips", FLEX, FLEX_OK),
    fail("dataflow-subnetwork", FLEX, {**FLEX_OK, "subnetwork": ""}),
    ok("dataflow-subnetwork", FLEX, FLEX_OK),
    fail(
        "dataflow-dedicated-service-account",
        FLEX,
        {**FLEX_OK, "serviceAccountEmail": "123456789-compute@developer.gserviceaccount.com"},
    ),
    fail("dataflow-dedicated-service-account", FLEX, {"ipConfiguration": "WORKER_IP_PRIVATE"}),
    ok("dataflow-dedicated-service-account", FLEX, FLEX_OK),
    fail("dataflow-cmek", FLEX, {**FLEX_OK, "kmsKeyName": None}),
    ok("dataflow-cmek", FLEX, FLEX_OK),
    fail("dataflow-streaming-engine", FLEX, {**FLEX_OK, "enableStreamingEngine": False}),
    ok("dataflow-streaming-engine", FLEX, FLEX_OK),
    fail("dataflow-max-workers", FLEX, {**FLEX_OK, "maxWorkers": 21}),
    fail("dataflow-max-workers", FLEX, {**FLEX_OK, "maxWorkers": None}),
    fail("dataflow-max-workers", FLEX, {**FLEX_OK, "maxWorkers": 6}, settings={"max_workers": 5}),
    ok("dataflow-max-workers", FLEX, FLEX_OK),
    # vertex
    fail("vertex-endpoint-private", ENDPOINT, {"displayName": "triage"}),
    fail(
        "vertex-endpoint-private",
        GARDEN,
        {"endpointConfig": {"privateServiceConnectConfig": {"enablePrivateServiceConnect": False}}},
    ),
    ok(
        "vertex-endpoint-private",
        ENDPOINT,
        {"privateServiceConnectConfig": {"enablePrivateServiceConnect": True}},
    ),
    ok("vertex-endpoint-private", ENDPOINT, {"network": "projects/1/global/networks/vpc"}),
    ok(
        "vertex-endpoint-private",
        GARDEN,
        {"endpointConfig": {"privateServiceConnectConfig": {"enablePrivateServiceConnect": True}}},
    ),
    ok("vertex-endpoint-private", ENDPOINT, {}, settings={"private_endpoint_required": False}),
    fail(
        "vertex-replica-bounds",
        GARDEN,
        {"deployConfig": {"dedicatedResources": {"minReplicaCount": 1, "maxReplicaCount": 9}}},
    ),
    fail("vertex-replica-bounds", POOL, {"dedicatedResources": {"minReplicaCount": 0}}),
    fail("vertex-replica-bounds", POOL, {}),
    ok(
        "vertex-replica-bounds",
        GARDEN,
        {"deployConfig": {"dedicatedResources": {"minReplicaCount": 1, "maxReplicaCount": 2}}},
    ),
    ok("vertex-replica-bounds", POOL, {"dedicatedResources": {"minReplicaCount": 2}}),
    fail("vertex-endpoint-cmek", ENDPOINT, {}),
    ok("vertex-endpoint-cmek", ENDPOINT, {"encryptionSpec": {"kmsKeyName": KMS}}),
    # quotas
    fail(
        "quotas-gpu-bounded",
        QUOTA,
        {"quotaId": "NVIDIA-L4-GPUS-per-project-region", "quotaConfig": {"preferredValue": "64"}},
    ),
    fail(
        "quotas-gpu-bounded",
        QUOTA,
        {"quotaId": "GPUS-ALL-REGIONS-per-project", "quotaConfig": {"preferredValue": "many"}},
    ),
    ok(
        "quotas-gpu-bounded",
        QUOTA,
        {
            "quotaId": "CustomModelServingL4GPUsPerProjectPerRegion",
            "quotaConfig": {"preferredValue": "2"},
        },
    ),
    ok("quotas-gpu-bounded", QUOTA, {"quotaId": "CPUS-per-project-region", "quotaConfig": {}}),
    # labels
    fail("labels-required", BUCKET, {"labels": {"environment": "dev"}}),
    fail("labels-required", FLEX, {"labels": {"environment": "dev", "app": ""}}),
    fail("labels-required", TOPIC, {}),
    ok("labels-required", TOPIC, {"labels": LABELS}),
    fail(
        "labels-required",
        "gcp:monitoring/alertPolicy:AlertPolicy",
        {"labels": LABELS, "userLabels": {"app": "realtime-anomaly"}},
    ),
    ok(
        "labels-required",
        "gcp:monitoring/notificationChannel:NotificationChannel",
        {
            "labels": {"email_address": "oncall@example.com"},
            "userLabels": LABELS,
        },
    ),
    ok("labels-required", NETWORK, {}),
]


def _config(case: Case) -> PackConfig:
    settings = replace(Settings(), **case.settings)
    return PackConfig(settings={case.rule: settings})


def _run(case: Case) -> list[str]:
    resource = Resource(
        type=case.type,
        urn=f"urn:pulumi:prod::anomaly::{case.type}::res-under-test",
        name="res-under-test",
        props=case.props,
        protect=case.protect,
    )
    only = [RULES_BY_NAME[case.rule]]
    return [v.message for v in evaluate([resource], _config(case), only) if v.policy == case.rule]


def _case_id(case: Case) -> str:
    return f"{case.rule}-{'fail' if case.fails else 'pass'}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_rule_case(case: Case) -> None:
    messages = _run(case)
    if case.fails:
        assert messages, f"{case.rule} reported nothing for {case.props}"
        for message in messages:
            assert "'res-under-test'" in message
            assert case.type in message
            assert "expected" in message
            assert " object at 0x" not in message
    else:
        assert messages == []


@pytest.mark.parametrize("fails", [True, False], ids=["failing", "passing"])
def test_every_rule_has_case(fails: bool) -> None:
    covered = {case.rule for case in CASES if case.fails is fails}
    assert covered == set(RULES_BY_NAME)


def test_pack_has_thirty_rules() -> None:
    assert len(ALL_RULES) >= 30
    for rule in ALL_RULES:
        assert rule.description.endswith(".")
        assert rule.enforcement in set(Enforcement)


def test_message_shows_found_value() -> None:
    case = fail("storage-public-access-prevention", BUCKET, {"publicAccessPrevention": "inherited"})
    (message,) = _run(case)
    assert 'publicAccessPrevention is "inherited"' in message
    assert 'expected "enforced"' in message


def test_message_shows_missing_value() -> None:
    (message,) = _run(fail("network-vpc-custom-mode", NETWORK, {}))
    assert "autoCreateSubnetworks is not set" in message


def test_rule_ignores_other_types() -> None:
    assert _run(Case("storage-uniform-bucket-level-access", TOPIC, {}, fails=False)) == []
