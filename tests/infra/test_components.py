"""Each of infra-A's components under mocks: its resources, their settings and IAM grants."""

from __future__ import annotations

import json

import pytest

from infra.components.analytics import Analytics, AnalyticsArgs
from infra.components.encryption import (
    ENCRYPTER_DECRYPTER,
    KEY_USERS,
    ROTATION_PERIOD,
    Encryption,
    EncryptionArgs,
    key_agents,
)
from infra.components.features import COLUMN_FAMILY, Features, FeaturesArgs
from infra.components.identity import (
    PROJECT_ROLES,
    Identity,
    IdentityArgs,
    RepositoryRef,
    VertexEndpointAccess,
)
from infra.components.messaging import (
    REVIEW_PURPOSE,
    DeliverySettings,
    Messaging,
    MessagingArgs,
)
from infra.components.network import (
    DATAFLOW_SHUFFLE_PORTS,
    IAP_TCP_FORWARDING_RANGE,
    CloudNat,
    IapSsh,
    Network,
    NetworkArgs,
)
from infra.components.project_services import (
    CORE_SERVICES,
    ProjectServices,
    ProjectServicesArgs,
    services_for,
)
from infra.components.storage import Storage, StorageArgs, repository_url
from pipeline.schemas import TABLES, schema_json
from tests.infra.mocks import PROJECT, declare

LABELS = {"environment": "dev", "app": "realtime-anomaly"}
KEY = "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"
WORKER = "workers@test-project.iam.gserviceaccount.com"
PUBSUB_AGENT = "service-1@gcp-sa-pubsub.iam.gserviceaccount.com"


# Project services


def test_services_for_features():
    assert services_for(cmek=False, vertex=False, gpu_quota=False, iap_ssh=False) == tuple(
        sorted(CORE_SERVICES)
    )
    full = services_for(cmek=True, vertex=True, gpu_quota=True, iap_ssh=True)
    extra = set(full) - set(CORE_SERVICES)
    assert extra == {
        "cloudkms.googleapis.com",
        "aiplatform.googleapis.com",
        "cloudquotas.googleapis.com",
        "iap.googleapis.com",
    }


def test_services_never_disabled_on_destroy():
    declared = declare(
        lambda: ProjectServices(
            "services",
            ProjectServicesArgs(project=PROJECT, services=["pubsub.googleapis.com"] * 2),
        )
    )
    (service,) = declared.of_type("gcp:projects/service:Service")
    assert service.inputs["disableOnDestroy"] is False
    assert service.inputs["disableDependentServices"] is False


def test_service_agents_resolved():
    declared = declare(
        lambda: ProjectServices(
            "services",
            ProjectServicesArgs(
                project=PROJECT,
                services=["pubsub.googleapis.com"],
                service_agents=["pubsub", "storage", "bigquery", "dataflow", "compute"],
            ),
        ),
        lambda component: component.agents,
    )
    assert declared.outputs == {
        "pubsub": "service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com",
        "storage": "service-123456789012@gs-project-accounts.iam.gserviceaccount.com",
        "bigquery": "bq-123456789012@bigquery-encryption.iam.gserviceaccount.com",
        "dataflow": "service-123456789012@dataflow-service-producer-prod.iam.gserviceaccount.com",
        "compute": "service-123456789012@compute-system.iam.gserviceaccount.com",
    }
    identity = declared.one("gcp:projects/serviceIdentity:ServiceIdentity")
    service = declared.one("gcp:projects/service:Service")
    assert service.urn in identity.depends_on


def test_service_agents_reject_unknown():
    with pytest.raises(ValueError, match=r"unknown service agents \['kms'\]"):
        ProjectServicesArgs(project=PROJECT, services=[], service_agents=["kms"])


# Network


def network(iap: IapSsh | None = None, nat: CloudNat | None = None):
    return declare(
        lambda: Network(
            "network",
            NetworkArgs(
                project=PROJECT,
                region="us-central1",
                prefix="anomaly-dev",
                subnet_cidr="10.20.0.0/22",
                worker_service_account=WORKER,
                iap_ssh=iap,
                cloud_nat=nat,
            ),
        )
    )


def test_network_default_resources():
    declared = network()
    vpc = declared.one("gcp:compute/network:Network")
    subnet = declared.one("gcp:compute/subnetwork:Subnetwork")
    firewall = declared.one("gcp:compute/firewall:Firewall")
    assert vpc.inputs["autoCreateSubnetworks"] is False
    assert subnet.inputs["privateIpGoogleAccess"] is True
    assert subnet.inputs["logConfig"]["metadata"] == "INCLUDE_ALL_METADATA"
    assert firewall.inputs["allows"] == [{"protocol": "tcp", "ports": [DATAFLOW_SHUFFLE_PORTS]}]
    assert firewall.inputs["sourceServiceAccounts"] == [WORKER]
    assert firewall.inputs["targetServiceAccounts"] == [WORKER]
    assert "sourceRanges" not in firewall.inputs
    assert firewall.inputs["logConfig"] == {"metadata": "INCLUDE_ALL_METADATA"}
    assert declared.of_type("gcp:compute/router:Router") == []
    assert declared.of_type("gcp:compute/routerNat:RouterNat") == []


def test_network_iap_ssh_rule():
    declared = network(iap=IapSsh())
    rules = {r.inputs["name"]: r for r in declared.of_type("gcp:compute/firewall:Firewall")}
    ssh = rules["anomaly-dev-allow-iap-ssh"]
    assert ssh.inputs["sourceRanges"] == [IAP_TCP_FORWARDING_RANGE]
    assert ssh.inputs["allows"] == [{"protocol": "tcp", "ports": ["22"]}]
    assert ssh.inputs["targetServiceAccounts"] == [WORKER]
    assert "logConfig" in ssh.inputs


def test_network_nat_logs():
    declared = network(nat=CloudNat())
    nat = declared.one("gcp:compute/routerNat:RouterNat")
    router = declared.one("gcp:compute/router:Router")
    assert nat.inputs["logConfig"] == {"enable": True, "filter": "ERRORS_ONLY"}
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat.inputs["router"] == router.inputs["name"]


# Encryption


def encryption(protect: bool):
    agents = {agent: f"{agent}@agents.test" for agent in key_agents(tuple(KEY_USERS))}
    return declare(
        lambda: Encryption(
            "encryption",
            EncryptionArgs(
                project=PROJECT,
                region="us-central1",
                prefix="anomaly-prod",
                service_agents=agents,
                labels=LABELS,
                protect=protect,
            ),
        )
    )


def test_encryption_keys_rotate():
    declared = encryption(protect=True)
    keys = declared.of_type("gcp:kms/cryptoKey:CryptoKey")
    assert len(keys) == len(KEY_USERS)
    for key in keys:
        assert key.inputs["rotationPeriod"] == ROTATION_PERIOD
        assert key.inputs["labels"] == LABELS
        assert key.protect is True
        assert key.inputs["deletionPolicy"] == "PREVENT"
    assert declared.one("gcp:kms/keyRing:KeyRing").protect is True


def test_encryption_grant_per_agent_and_key():
    declared = encryption(protect=False)
    key_ids = {
        key.inputs["name"].removeprefix("anomaly-prod-"): key.urn
        for key in declared.of_type("gcp:kms/cryptoKey:CryptoKey")
    }
    grants = {
        (grant.inputs["cryptoKeyId"].rsplit("-", 1)[-1], grant.inputs["member"])
        for grant in declared.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    }
    expected = {
        (purpose, f"serviceAccount:{agent}@agents.test")
        for purpose, agents in KEY_USERS.items()
        for agent in agents
    }
    assert grants == expected
    assert set(key_ids) == set(KEY_USERS)
    for grant in declared.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"):
        assert grant.inputs["role"] == ENCRYPTER_DECRYPTER


def test_encryption_requires_agents():
    with pytest.raises(ValueError, match=r"service_agents lacks \['artifactregistry', 'bigquery',"):
        EncryptionArgs(project=PROJECT, region="us-central1", prefix="p", service_agents={})


# Messaging


def messaging(kms_key_name: str | None = None):
    return declare(
        lambda: Messaging(
            "messaging",
            MessagingArgs(
                project=PROJECT,
                prefix="anomaly-dev",
                pubsub_service_agent=PUBSUB_AGENT,
                labels=LABELS,
                kms_key_name=kms_key_name,
            ),
        )
    )


def test_messaging_topics_and_subscriptions():
    declared = messaging(KEY)
    topics = {t.inputs["name"]: t for t in declared.of_type("gcp:pubsub/topic:Topic")}
    assert set(topics) == {
        "anomaly-dev-events",
        "anomaly-dev-detections",
        "anomaly-dev-dead-letter",
        "anomaly-dev-events-undelivered",
        "anomaly-dev-detections-undelivered",
    }
    for topic in topics.values():
        assert topic.inputs["kmsKeyName"] == KEY
        assert topic.inputs["labels"] == LABELS


def test_every_dead_letter_topic_has_subscription():
    declared = messaging()
    by_topic = {
        s.inputs["topic"]: s for s in declared.of_type("gcp:pubsub/subscription:Subscription")
    }
    for name in ("dead-letter", "events-undelivered", "detections-undelivered"):
        review = by_topic[f"projects/{PROJECT}/topics/anomaly-dev-{name}"]
        assert review.inputs["labels"] == {**LABELS, "purpose": REVIEW_PURPOSE}
        assert review.inputs["retryPolicy"] == {"minimumBackoff": "10s", "maximumBackoff": "600s"}
        assert review.inputs["expirationPolicy"] == {"ttl": ""}


@pytest.mark.parametrize(
    ("subscription", "dead_letter_topic"),
    [("events-pipeline", "events-undelivered"), ("detections-consumers", "detections-undelivered")],
)
def test_consumer_subscription_dead_letters(subscription, dead_letter_topic):
    declared = messaging()
    subs = {s.inputs["name"]: s for s in declared.of_type("gcp:pubsub/subscription:Subscription")}
    sub = subs[f"anomaly-dev-{subscription}"]
    policy = sub.inputs["deadLetterPolicy"]
    assert policy["deadLetterTopic"] == f"projects/{PROJECT}/topics/anomaly-dev-{dead_letter_topic}"
    assert 5 <= policy["maxDeliveryAttempts"] <= 100
    assert sub.inputs["retryPolicy"] == {"minimumBackoff": "10s", "maximumBackoff": "600s"}

    publishers = [
        g
        for g in declared.of_type("gcp:pubsub/topicIAMMember:TopicIAMMember")
        if g.inputs["topic"] == f"anomaly-dev-{dead_letter_topic}"
    ]
    subscribers = [
        g
        for g in declared.of_type("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember")
        if g.inputs["subscription"] == f"anomaly-dev-{subscription}"
    ]
    assert [(g.inputs["role"], g.inputs["member"]) for g in publishers] == [
        ("roles/pubsub.publisher", f"serviceAccount:{PUBSUB_AGENT}")
    ]
    assert [(g.inputs["role"], g.inputs["member"]) for g in subscribers] == [
        ("roles/pubsub.subscriber", f"serviceAccount:{PUBSUB_AGENT}")
    ]


@pytest.mark.parametrize("attempts", [4, 101])
def test_delivery_attempts_bounds(attempts):
    with pytest.raises(ValueError, match=f"max_delivery_attempts {attempts} is invalid"):
        DeliverySettings(max_delivery_attempts=attempts)


# Analytics


def analytics(protect: bool, kms_key_name: str | None = None):
    return declare(
        lambda: Analytics(
            "analytics",
            AnalyticsArgs(
                project=PROJECT,
                region="us-central1",
                prefix="anomaly-dev",
                labels=LABELS,
                kms_key_name=kms_key_name,
                protect=protect,
            ),
        ),
        lambda component: component.table_refs,
    )


def test_tables_follow_pipeline_schemas():
    declared = analytics(protect=False)
    tables = {t.inputs["tableId"]: t for t in declared.of_type("gcp:bigquery/table:Table")}
    assert set(tables) == {spec.table_id for spec in TABLES.values()}
    for key, spec in TABLES.items():
        table = tables[spec.table_id]
        assert json.loads(table.inputs["schema"]) == json.loads(schema_json(key))
        assert table.inputs["timePartitioning"]["field"] == spec.partition_field
        assert table.inputs["clusterings"] == list(spec.clustering_fields)
    assert declared.outputs["detections"] == f"{PROJECT}:anomaly_dev_analytics.detections"


@pytest.mark.parametrize("protect", [True, False])
def test_analytics_protection(protect):
    declared = analytics(protect=protect, kms_key_name=KEY)
    dataset = declared.one("gcp:bigquery/dataset:Dataset")
    assert dataset.protect is protect
    assert dataset.inputs["deleteContentsOnDestroy"] is (not protect)
    assert dataset.inputs["defaultEncryptionConfiguration"] == {"kmsKeyName": KEY}
    for table in declared.of_type("gcp:bigquery/table:Table"):
        assert table.protect is protect
        assert table.inputs["deletionProtection"] is protect
        assert table.inputs["encryptionConfiguration"] == {"kmsKeyName": KEY}


# Features


def test_features_instance_and_gc():
    declared = declare(
        lambda: Features(
            "features",
            FeaturesArgs(
                project=PROJECT,
                zone="us-central1-b",
                prefix="anomaly-prod",
                nodes=3,
                labels=LABELS,
                kms_key_name=KEY,
                protect=True,
            ),
        )
    )
    instance = declared.one("gcp:bigtable/instance:Instance")
    (cluster,) = instance.inputs["clusters"]
    assert cluster["numNodes"] == 3
    assert cluster["kmsKeyName"] == KEY
    assert cluster["zone"] == "us-central1-b"
    assert instance.inputs["deletionProtection"] is True
    assert instance.protect is True

    table = declared.one("gcp:bigtable/table:Table")
    assert table.inputs["columnFamilies"] == [{"family": COLUMN_FAMILY}]
    assert table.inputs["deletionProtection"] == "PROTECTED"

    policy = declared.one("gcp:bigtable/gCPolicy:GCPolicy")
    assert policy.inputs["columnFamily"] == COLUMN_FAMILY
    assert policy.inputs["maxVersions"] == [{"number": 1}]
    assert policy.inputs["maxAge"] == {"duration": "2592000s"}


def test_features_reject_zero_nodes():
    with pytest.raises(ValueError, match="nodes 0 is invalid"):
        FeaturesArgs(project=PROJECT, zone="us-central1-a", prefix="p", nodes=0)


# Storage


@pytest.mark.parametrize("protect", [True, False])
def test_storage_bucket_settings(protect):
    declared = declare(
        lambda: Storage(
            "storage",
            StorageArgs(
                project=PROJECT,
                region="us-central1",
                prefix="anomaly-dev",
                labels=LABELS,
                kms_key_name=KEY,
                protect=protect,
            ),
        ),
        lambda component: {"url": component.repository_url},
    )
    bucket = declared.one("gcp:storage/bucket:Bucket")
    assert bucket.inputs["uniformBucketLevelAccess"] is True
    assert bucket.inputs["publicAccessPrevention"] == "enforced"
    assert bucket.inputs["versioning"] == {"enabled": True}
    assert bucket.inputs["forceDestroy"] is (not protect)
    assert bucket.inputs["encryption"] == {"defaultKmsKeyName": KEY}
    assert bucket.protect is protect
    temp_rule = bucket.inputs["lifecycleRules"][0]
    assert temp_rule["action"] == {"type": "Delete"}
    assert temp_rule["condition"]["matchesPrefixes"] == ["tmp/"]

    repository = declared.one("gcp:artifactregistry/repository:Repository")
    assert repository.inputs["format"] == "DOCKER"
    assert repository.inputs["kmsKeyName"] == KEY
    assert {p["id"] for p in repository.inputs["cleanupPolicies"]} == {
        "keep-recent",
        "delete-untagged",
    }
    assert declared.outputs["url"] == repository_url(PROJECT, "us-central1", "anomaly-dev")


# Identity


def identity(endpoint: VertexEndpointAccess | None = None):
    def build() -> Identity:
        component = Identity(
            "identity",
            IdentityArgs(
                project=PROJECT,
                prefix="anomaly-dev",
                input_subscription="anomaly-dev-events-pipeline",
                publish_topics={
                    "detections": "anomaly-dev-detections",
                    "dead-letter": "anomaly-dev-dead-letter",
                },
                dataset_id="anomaly_dev_analytics",
                bigtable_instance="anomaly-dev-features",
                bucket="bucket-1",
                repository=RepositoryRef(
                    location="us-central1", repository_id="anomaly-dev-images"
                ),
            ),
        )
        if endpoint is not None:
            component.grant_endpoint(endpoint)
        return component

    return declare(build)


def test_identity_project_roles_exact():
    declared = identity()
    roles = sorted(g.inputs["role"] for g in declared.of_type("gcp:projects/iAMMember:IAMMember"))
    assert roles == [
        "roles/dataflow.worker",
        "roles/logging.logWriter",
        "roles/monitoring.metricWriter",
    ]
    assert sorted(PROJECT_ROLES) == roles


def test_identity_resource_grants():
    declared = identity()
    member = "serviceAccount:anomaly-dev-dataflow@test-project.iam.gserviceaccount.com"
    grants = {
        (r.type.rsplit(":", 1)[-1], r.inputs["role"], target)
        for r in declared.resources
        if "role" in r.inputs and r.type != "gcp:projects/iAMMember:IAMMember"
        for target in [
            r.inputs.get("subscription")
            or r.inputs.get("topic")
            or r.inputs.get("datasetId")
            or r.inputs.get("instance")
            or r.inputs.get("bucket")
            or r.inputs.get("repository")
        ]
    }
    assert grants == {
        ("SubscriptionIAMMember", "roles/pubsub.subscriber", "anomaly-dev-events-pipeline"),
        ("SubscriptionIAMMember", "roles/pubsub.viewer", "anomaly-dev-events-pipeline"),
        ("TopicIAMMember", "roles/pubsub.publisher", "anomaly-dev-detections"),
        ("TopicIAMMember", "roles/pubsub.publisher", "anomaly-dev-dead-letter"),
        ("DatasetIamMember", "roles/bigquery.dataEditor", "anomaly_dev_analytics"),
        ("InstanceIamMember", "roles/bigtable.reader", "anomaly-dev-features"),
        ("BucketIAMMember", "roles/storage.objectAdmin", "bucket-1"),
        ("RepositoryIamMember", "roles/artifactregistry.reader", "anomaly-dev-images"),
    }
    for resource in declared.resources:
        if "member" in resource.inputs:
            assert resource.inputs["member"] == member


def test_identity_no_basic_roles_or_keys():
    declared = identity()
    roles = {r.inputs["role"] for r in declared.resources if "role" in r.inputs}
    assert roles.isdisjoint({"roles/owner", "roles/editor", "roles/viewer"})
    assert declared.of_type("gcp:serviceaccount/key:Key") == []


def test_identity_endpoint_grant():
    declared = identity(VertexEndpointAccess(endpoint_id="42", region="us-central1"))
    grant = declared.one("gcp:vertex/aiEndpointIamMember:AiEndpointIamMember")
    assert grant.inputs["endpoint"] == "42"
    assert grant.inputs["role"] == "roles/aiplatform.user"
    assert grant.inputs["location"] == "us-central1"
    assert len(declared.component.grants) == 12
