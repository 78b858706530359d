"""Dataflow staging bucket and the Artifact Registry repository for the pipeline image."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import (
    child_opts,
    component_type,
    deletion_policy,
    resource_name,
)

TEMP_PREFIX = "tmp/"
STAGING_PREFIX = "staging/"
TEMPLATES_PREFIX = "templates/"
"""Object prefixes in the bucket: Dataflow temp files, staged packages, Flex Template specs."""


def repository_id(prefix: str) -> str:
    """Return the Docker repository ID of a stack with name prefix ``prefix``."""
    return resource_name("artifact_repository", prefix, "images")


def repository_url(project: str, region: str, prefix: str) -> str:
    """Build ``REGION-docker.pkg.dev/PROJECT/REPOSITORY``, known before the repository exists."""
    return f"{region}-docker.pkg.dev/{project}/{repository_id(prefix)}"


@dataclass(frozen=True)
class StorageArgs:
    """Inputs of ``Storage``."""

    project: str
    region: str
    prefix: str
    labels: Mapping[str, str] = field(default_factory=dict)
    kms_key_name: pulumi.Input[str] | None = None
    """Default key of the bucket and key of the repository. It must be in ``region``,
    because Artifact Registry accepts only a key in the repository's region."""

    protect: bool = False
    """``force_destroy=False``, ``deletion_policy = "PREVENT"`` and Pulumi ``protect`` on the
    bucket and repository; when False the bucket is destroyed with its objects."""

    temp_object_days: int = 7
    """Days before objects under ``temp/`` are deleted."""

    noncurrent_version_days: int = 30
    """Days before overwritten or deleted object versions are removed."""

    keep_image_versions: int = 10
    """Most recent image versions kept by the repository cleanup policy."""

    untagged_image_age: str = "604800s"
    """Untagged images older than this (7 days) are deleted."""


class Storage(pulumi.ComponentResource):
    """Bucket for Dataflow staging, temp files and templates, and a Docker repository."""

    bucket: gcp.storage.Bucket
    repository: gcp.artifactregistry.Repository
    repository_url: pulumi.Output[str]
    """``REGION-docker.pkg.dev/PROJECT/REPOSITORY``, the prefix of image names."""

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("storage", "Storage"), name, None, opts)

        encryption = None
        if args.kms_key_name is not None:
            encryption = gcp.storage.BucketEncryptionArgs(default_kms_key_name=args.kms_key_name)

        # Bucket names are global, so the project ID makes the name unique.
        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            project=args.project,
            name=resource_name("bucket", args.project, args.prefix, "dataflow"),
            location=args.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            lifecycle_rules=_lifecycle_rules(args),
            encryption=encryption,
            labels=dict(args.labels),
            force_destroy=not args.protect,
            deletion_policy=deletion_policy(args.protect),
            opts=child_opts(self, opts, protect=args.protect),
        )

        self.repository = gcp.artifactregistry.Repository(
            f"{name}-repository",
            project=args.project,
            location=args.region,
            repository_id=repository_id(args.prefix),
            format="DOCKER",
            description="Flex Template launcher and worker images of the anomaly pipeline.",
            kms_key_name=args.kms_key_name,
            labels=dict(args.labels),
            cleanup_policy_dry_run=False,
            cleanup_policies=_cleanup_policies(args),
            deletion_policy=deletion_policy(args.protect),
            opts=child_opts(self, opts, protect=args.protect),
        )
        self.repository_url = pulumi.Output.concat(
            args.region, "-docker.pkg.dev/", args.project, "/", self.repository.repository_id
        )

        self.register_outputs({"bucket": self.bucket.name, "repository_url": self.repository_url})


def _lifecycle_rules(args: StorageArgs) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    return [
        gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                age=args.temp_object_days, matches_prefixes=[TEMP_PREFIX]
            ),
        ),
        gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                days_since_noncurrent_time=args.noncurrent_version_days,
                with_state="ARCHIVED",
            ),
        ),
    ]


def _cleanup_policies(
    args: StorageArgs,
) -> list[gcp.artifactregistry.RepositoryCleanupPolicyArgs]:
    # Artifact Registry applies KEEP before DELETE, so the newest versions survive
    # even when they are untagged and old.
    return [
        gcp.artifactregistry.RepositoryCleanupPolicyArgs(
            id="keep-recent",
            action="KEEP",
            most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                keep_count=args.keep_image_versions
            ),
        ),
        gcp.artifactregistry.RepositoryCleanupPolicyArgs(
            id="delete-untagged",
            action="DELETE",
            condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                tag_state="UNTAGGED", older_than=args.untagged_image_age
            ),
        ),
    ]
