"""Dataflow worker service account and its grants, each on the one resource it concerns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import child_opts, component_type, iam_member, resource_name

PROJECT_ROLES: Mapping[str, str] = {
    "roles/dataflow.worker": (
        "Dataflow jobs have no IAM policy of their own, so the worker permissions "
        "(work items, shuffle, job state) exist only at project level."
    ),
    "roles/logging.logWriter": (
        "Log entries are written to the project's log buckets; no narrower resource "
        "accepts the grant."
    ),
    "roles/monitoring.metricWriter": (
        "Cloud Monitoring has no resource-level IAM; the job writes its custom metrics "
        "(anomaly rate, triage failures) into the project."
    ),
}
"""The only project-level roles of the worker account, each with the reason nothing narrower works.

Everything else is granted on one resource. The pipeline writes BigQuery with
streaming inserts (``pipeline/delivery.py``), which need no BigQuery job, so
``roles/bigquery.jobUser`` is not granted. A pipeline that switches to file
loads would need it."""


@dataclass(frozen=True)
class VertexEndpointAccess:
    """The Vertex AI endpoint the workers call for triage."""

    endpoint_id: pulumi.Input[str]
    """Numeric endpoint ID."""
    region: str


@dataclass(frozen=True)
class RepositoryRef:
    """An Artifact Registry repository by location and ID."""

    location: str
    repository_id: pulumi.Input[str]


@dataclass(frozen=True)
class IdentityArgs:
    """Inputs of ``Identity``: the resources the workers read or write."""

    project: str
    prefix: str
    input_subscription: pulumi.Input[str]
    """Subscription the job reads (ID or full name)."""

    publish_topics: Mapping[str, pulumi.Input[str]]
    """Topics the job publishes to, by key (detections, dead-letter)."""

    dataset_id: pulumi.Input[str]
    bigtable_instance: pulumi.Input[str]
    bucket: pulumi.Input[str]
    repository: RepositoryRef


class Identity(pulumi.ComponentResource):
    """Dedicated service account of the Dataflow launcher and workers (no keys, no basic roles)."""

    account: gcp.serviceaccount.Account
    email: pulumi.Output[str]
    member: pulumi.Output[str]
    project_grants: dict[str, gcp.projects.IAMMember]
    grants: list[pulumi.Resource]
    """Every IAM binding of the account; the streaming job waits for all of them."""

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("identity", "Identity"), name, None, opts)
        self._name = name
        self._opts = opts
        self._project = args.project
        self.grants = []

        self.account = gcp.serviceaccount.Account(
            f"{name}-dataflow",
            project=args.project,
            account_id=resource_name("service_account", args.prefix, "dataflow"),
            display_name=f"Dataflow workers of {args.prefix}",
            description="Runs the anomaly detection Flex Template launcher and workers.",
            opts=child_opts(self, opts),
        )
        self.email = self.account.email
        self.member = iam_member("serviceAccount", self.account.email)

        self.project_grants = {
            role: gcp.projects.IAMMember(
                f"{name}-project-{role.removeprefix('roles/').replace('.', '-')}",
                project=args.project,
                role=role,
                member=self.member,
                opts=child_opts(self, opts),
            )
            for role in PROJECT_ROLES
        }
        self.grants.extend(self.project_grants.values())
        self._resource_grants(args)

        self.register_outputs({"email": self.email, "project_roles": sorted(PROJECT_ROLES)})

    def _child(self, suffix: str) -> tuple[str, pulumi.ResourceOptions]:
        return f"{self._name}-{suffix}", child_opts(self, self._opts)

    def _resource_grants(self, args: IdentityArgs) -> None:
        # Dataflow reads the subscription's metadata as well as its messages.
        # NOTE: the viewer grant follows the Pub/Sub IAM reference (subscriber has no
        # pubsub.subscriptions.get); Dataflow's own guide names only the subscriber role.
        for role in ("roles/pubsub.subscriber", "roles/pubsub.viewer"):
            name, opts = self._child(f"subscription-{role.removeprefix('roles/pubsub.')}")
            self.grants.append(
                gcp.pubsub.SubscriptionIAMMember(
                    name,
                    project=args.project,
                    subscription=args.input_subscription,
                    role=role,
                    member=self.member,
                    opts=opts,
                )
            )

        for key, topic in args.publish_topics.items():
            name, opts = self._child(f"topic-{key}-publisher")
            self.grants.append(
                gcp.pubsub.TopicIAMMember(
                    name,
                    project=args.project,
                    topic=topic,
                    role="roles/pubsub.publisher",
                    member=self.member,
                    opts=opts,
                )
            )

        name, opts = self._child("dataset-editor")
        self.grants.append(
            gcp.bigquery.DatasetIamMember(
                name,
                project=args.project,
                dataset_id=args.dataset_id,
                role="roles/bigquery.dataEditor",
                member=self.member,
                opts=opts,
            )
        )

        name, opts = self._child("bigtable-reader")
        self.grants.append(
            gcp.bigtable.InstanceIamMember(
                name,
                project=args.project,
                instance=args.bigtable_instance,
                role="roles/bigtable.reader",
                member=self.member,
                opts=opts,
            )
        )

        name, opts = self._child("bucket-object-admin")
        self.grants.append(
            gcp.storage.BucketIAMMember(
                name,
                bucket=args.bucket,
                role="roles/storage.objectAdmin",
                member=self.member,
                opts=opts,
            )
        )

        name, opts = self._child("repository-reader")
        self.grants.append(
            gcp.artifactregistry.RepositoryIamMember(
                name,
                project=args.project,
                location=args.repository.location,
                repository=args.repository.repository_id,
                role="roles/artifactregistry.reader",
                member=self.member,
                opts=opts,
            )
        )

    def grant_endpoint(self, endpoint: VertexEndpointAccess) -> gcp.vertex.AiEndpointIamMember:
        """Let the workers call ``endpoint`` for triage.

        A method rather than an Args field, because the endpoint is declared after
        this account: a private endpoint needs the network, whose firewall rules
        need this account's email.
        """
        # Vertex AI endpoints take IAM bindings (endpoints.setIamPolicy), and
        # aiplatform.user is the predefined role with aiplatform.endpoints.predict.
        name, opts = self._child("endpoint-user")
        grant = gcp.vertex.AiEndpointIamMember(
            name,
            project=self._project,
            location=endpoint.region,
            endpoint=endpoint.endpoint_id,
            role="roles/aiplatform.user",
            member=self.member,
            opts=opts,
        )
        self.grants.append(grant)
        return grant
