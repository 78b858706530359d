"""The stack: validates the config, then declares and wires every component."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.components.analytics import Analytics, AnalyticsArgs
from infra.components.encryption import Encryption, EncryptionArgs, key_agents
from infra.components.features import Features, FeaturesArgs
from infra.components.gpu_quota import GpuQuota, GpuQuotaArgs
from infra.components.identity import (
    Identity,
    IdentityArgs,
    RepositoryRef,
    VertexEndpointAccess,
)
from infra.components.messaging import Messaging, MessagingArgs
from infra.components.model_serving import ModelServing, ModelServingArgs, PrivateEndpoint
from infra.components.monitoring import AlertThresholds, Monitoring, MonitoringArgs
from infra.components.network import CloudNat, IapSsh, Network, NetworkArgs
from infra.components.project_services import (
    ProjectServices,
    ProjectServicesArgs,
    services_for,
)
from infra.components.storage import Storage, StorageArgs, repository_url
from infra.components.streaming_job import StreamingJob, StreamingJobArgs
from infra.config import StackConfig, load_config

KEY_PURPOSES = ("pubsub", "bigquery", "bigtable", "storage", "dataflow")
"""Cloud KMS keys of a CMEK stack, one per service that stores data."""

DEV_PARTITION_EXPIRATION_DAYS = 30
"""Days a dev stack keeps BigQuery partitions; prod keeps them until deleted."""

IMAGE_NAME = "pipeline"
DEFAULT_IMAGE_TAG = "latest"


@dataclass(frozen=True)
class Stack:
    """The components of one stack, for tests and callers that inspect the wiring."""

    services: ProjectServices
    encryption: Encryption | None
    messaging: Messaging
    analytics: Analytics
    features: Features
    storage: Storage
    identity: Identity
    network: Network
    model_serving: ModelServing | None
    gpu_quota: GpuQuota | None
    streaming_job: StreamingJob
    monitoring: Monitoring


def main() -> None:
    """Entry point of ``pulumi up``: validate the config, then declare the stack.

    An invalid config raises ``ConfigError`` before any resource is declared.
    """
    config = load_config()
    stack = build(config)
    export_outputs(stack, config)


def default_image(config: StackConfig) -> str:
    """Return the configured image, or ``pipeline:latest`` in the stack's own repository."""
    if config.dataflow.container_image is not None:
        return config.dataflow.container_image
    base = repository_url(config.project, config.region, config.name_prefix)
    return f"{base}/{IMAGE_NAME}:{DEFAULT_IMAGE_TAG}"


def build(config: StackConfig) -> Stack:
    """Declare every resource of the stack that ``config`` describes."""
    prefix = config.name_prefix
    protect = config.is_prod
    agents = ["pubsub", *key_agents(KEY_PURPOSES)] if config.cmek else ["pubsub"]

    services = ProjectServices(
        "services",
        ProjectServicesArgs(
            project=config.project,
            services=services_for(
                cmek=config.cmek,
                vertex=config.triage_mode == "vertex",
                gpu_quota=config.triage_mode != "none",
                iap_ssh=config.network.iap_ssh,
            ),
            service_agents=sorted(set(agents)),
        ),
    )

    encryption = None
    keys: dict[str, pulumi.Output[str]] = {}
    if config.cmek:
        encryption = Encryption(
            "encryption",
            EncryptionArgs(
                project=config.project,
                region=config.region,
                prefix=prefix,
                service_agents=services.agents,
                keys=KEY_PURPOSES,
                labels=config.labels,
                protect=protect,
            ),
            opts=pulumi.ResourceOptions(depends_on=[services]),
        )
        keys = encryption.key_ids

    # Resources that use a key wait for the key grants, because the service
    # rejects a key its agent cannot use.
    after_keys = pulumi.ResourceOptions(
        depends_on=[services] if encryption is None else [services, encryption]
    )

    messaging = Messaging(
        "messaging",
        MessagingArgs(
            project=config.project,
            prefix=prefix,
            pubsub_service_agent=services.agents["pubsub"],
            labels=config.labels,
            kms_key_name=keys.get("pubsub"),
        ),
        opts=after_keys,
    )
    analytics = Analytics(
        "analytics",
        AnalyticsArgs(
            project=config.project,
            region=config.region,
            prefix=prefix,
            labels=config.labels,
            kms_key_name=keys.get("bigquery"),
            protect=protect,
            partition_expiration_days=None if protect else DEV_PARTITION_EXPIRATION_DAYS,
        ),
        opts=after_keys,
    )
    features = Features(
        "features",
        FeaturesArgs(
            project=config.project,
            zone=config.zone,
            prefix=prefix,
            nodes=config.bigtable.nodes,
            storage_type=config.bigtable.storage_type,
            labels=config.labels,
            kms_key_name=keys.get("bigtable"),
            protect=protect,
        ),
        opts=after_keys,
    )
    storage = Storage(
        "storage",
        StorageArgs(
            project=config.project,
            region=config.region,
            prefix=prefix,
            labels=config.labels,
            kms_key_name=keys.get("storage"),
            protect=protect,
        ),
        opts=after_keys,
    )

    identity = Identity(
        "identity",
        IdentityArgs(
            project=config.project,
            prefix=prefix,
            input_subscription=messaging.subscriptions["events-pipeline"].name,
            publish_topics={
                "detections": messaging.topics["detections"].name,
                "dead-letter": messaging.topics["dead-letter"].name,
            },
            dataset_id=analytics.dataset.dataset_id,
            bigtable_instance=features.instance.name,
            bucket=storage.bucket.name,
            repository=RepositoryRef(
                location=config.region, repository_id=storage.repository.repository_id
            ),
        ),
        opts=pulumi.ResourceOptions(depends_on=[services]),
    )

    network = Network(
        "network",
        NetworkArgs(
            project=config.project,
            region=config.region,
            prefix=prefix,
            subnet_cidr=config.network.subnet_cidr,
            worker_service_account=identity.email,
            iap_ssh=IapSsh() if config.network.iap_ssh else None,
            cloud_nat=CloudNat() if config.network.cloud_nat else None,
        ),
        opts=pulumi.ResourceOptions(depends_on=[services]),
    )

    model_serving = _model_serving(config, services, network, identity)
    gpu_quota = _gpu_quota(config, services)

    streaming_job = StreamingJob(
        "pipeline",
        StreamingJobArgs(
            project=config.project,
            region=config.region,
            prefix=prefix,
            image=default_image(config),
            bucket=storage.bucket.name,
            service_account_email=identity.email,
            subnetwork=network.subnetwork.self_link,
            input_subscription=messaging.subscription_ids["events-pipeline"],
            detections_topic=messaging.topic_ids["detections"],
            dead_letter_topic=messaging.topic_ids["dead-letter"],
            scored_events_table=analytics.table_refs["scored_events"],
            detections_table=analytics.table_refs["detections"],
            dead_letter_table=analytics.table_refs["dead_letter"],
            bigtable_project=config.project,
            bigtable_instance=features.instance.name,
            bigtable_table=features.table.name,
            triage_mode=config.triage_mode,
            vertex_endpoint=model_serving.endpoint_name if model_serving else None,
            triage_max_per_second=config.triage_max_per_second,
            machine_type=config.dataflow.machine_type,
            gpus_per_worker=config.dataflow.gpus_per_worker,
            num_workers=config.dataflow.initial_workers,
            max_workers=config.dataflow.max_workers,
            streaming_mode=config.dataflow.streaming_mode,
            iam_grants=list(identity.grants),
            labels=config.labels,
            kms_key_name=keys.get("dataflow"),
            protect=protect,
        ),
        opts=pulumi.ResourceOptions(
            depends_on=[
                services,
                # Workers must not start before the Dataflow and Compute Engine
                # agents can use the job's CMEK key.
                *([encryption] if encryption is not None else []),
                *([gpu_quota] if gpu_quota is not None else []),
            ]
        ),
    )

    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            project=config.project,
            prefix=prefix,
            job_name=streaming_job.job_name,
            input_subscription_id=messaging.subscriptions["events-pipeline"].name,
            dead_letter_subscription_id=messaging.subscriptions["dead-letter-review"].name,
            triage_mode=config.triage_mode,
            notification_emails=config.alerts.emails,
            vertex_endpoint_id=model_serving.endpoint_id if model_serving else None,
            thresholds=AlertThresholds(
                system_lag_seconds=config.alerts.system_lag_seconds,
                data_freshness_seconds=config.alerts.data_freshness_seconds,
                dead_letter_backlog=config.alerts.dead_letter_backlog,
                anomaly_rate=config.alerts.anomaly_rate,
                triage_failures=config.alerts.triage_failures,
                endpoint_error_rate=config.alerts.endpoint_error_rate,
                endpoint_latency_ms=float(config.alerts.endpoint_latency_ms),
            ),
            labels=config.labels,
        ),
        opts=pulumi.ResourceOptions(depends_on=[services]),
    )

    return Stack(
        services=services,
        encryption=encryption,
        messaging=messaging,
        analytics=analytics,
        features=features,
        storage=storage,
        identity=identity,
        network=network,
        model_serving=model_serving,
        gpu_quota=gpu_quota,
        streaming_job=streaming_job,
        monitoring=monitoring,
    )


def _model_serving(
    config: StackConfig, services: ProjectServices, network: Network, identity: Identity
) -> ModelServing | None:
    if config.triage_mode != "vertex":
        return None

    gemma = config.gemma
    private = None
    if gemma.private_endpoint:
        # NOTE: Vertex AI creates the PSC forwarding rule in the stack's VPC (PSC
        # automation); this path has only run under mocks, not against Vertex AI.
        private = PrivateEndpoint(allowed_projects=[config.project], network=network.network.id)
    serving = ModelServing(
        "triage-model",
        ModelServingArgs(
            project=config.project,
            region=config.region,
            prefix=config.name_prefix,
            accept_model_license=gemma.accept_license,
            model=gemma.model_id,
            machine_type=gemma.machine_type,
            accelerator_count=gemma.accelerator_count,
            min_replicas=gemma.min_replicas,
            max_replicas=gemma.max_replicas,
            private_endpoint=private,
            labels=config.labels,
            # The endpoint stores no data and is recreated in minutes, so it stays
            # deletable in prod as well.
            protect=False,
        ),
        opts=pulumi.ResourceOptions(depends_on=[services]),
    )
    identity.grant_endpoint(
        VertexEndpointAccess(endpoint_id=serving.endpoint_id, region=config.region)
    )
    return serving


def _gpu_quota(config: StackConfig, services: ProjectServices) -> GpuQuota | None:
    if config.triage_mode == "none" or config.quota_contact_email is None:
        return None
    return GpuQuota(
        "gpu-quota",
        GpuQuotaArgs(
            project=config.project,
            region=config.region,
            triage_mode=config.triage_mode,
            contact_email=config.quota_contact_email,
            prefix=config.name_prefix,
            vertex_max_replicas=config.gemma.max_replicas,
            vertex_gpus_per_replica=config.gemma.accelerator_count,
            dataflow_max_workers=config.dataflow.max_workers,
            dataflow_gpus_per_worker=config.dataflow.gpus_per_worker,
        ),
        opts=pulumi.ResourceOptions(depends_on=[services]),
    )


def export_outputs(stack: Stack, config: StackConfig) -> None:
    """Export the names and IDs operators and consumers need, plus console links."""
    messaging = stack.messaging
    for key, topic in messaging.topics.items():
        pulumi.export(f"topic_{key.replace('-', '_')}", topic.id)
    for key, subscription in messaging.subscriptions.items():
        pulumi.export(f"subscription_{key.replace('-', '_')}", subscription.id)
    for key, table in stack.analytics.table_refs.items():
        pulumi.export(f"table_{key}", table)

    pulumi.export("bucket", stack.storage.bucket.name)
    pulumi.export("image_repository", stack.storage.repository_url)
    pulumi.export("image", default_image(config))
    pulumi.export("worker_service_account", stack.identity.email)
    pulumi.export("bigtable_instance", stack.features.instance.name)
    pulumi.export("bigtable_table", stack.features.table.name)
    pulumi.export("job_name", stack.streaming_job.job_name)
    pulumi.export("job_id", stack.streaming_job.job_id)
    if stack.model_serving is not None:
        pulumi.export("endpoint_id", stack.model_serving.endpoint_id)
        pulumi.export("endpoint_name", stack.model_serving.endpoint_name)

    project, region = config.project, config.region
    console = "https://console.cloud.google.com"
    pulumi.export(
        "console_job",
        stack.streaming_job.job_id.apply(
            lambda job_id: f"{console}/dataflow/jobs/{region}/{job_id}?project={project}"
        ),
    )
    pulumi.export(
        "console_dataset",
        stack.analytics.dataset.dataset_id.apply(
            lambda dataset: (
                f"{console}/bigquery?project={project}&d={dataset}&p={project}&page=dataset"
            )
        ),
    )
    pulumi.export("console_monitoring", f"{console}/monitoring/alerting?project={project}")
