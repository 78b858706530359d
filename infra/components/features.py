"""Bigtable instance and table that hold per-entity features for enrichment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import (
    child_opts,
    component_type,
    deletion_policy,
    resource_name,
)

COLUMN_FAMILY = "features"
"""Column family of the features table; one row per ``entity_id``."""


@dataclass(frozen=True)
class FeaturesArgs:
    """Inputs of ``Features``."""

    project: str
    zone: str
    """Zone of the single cluster; its region must match the CMEK key's region."""

    prefix: str
    nodes: int = 1
    storage_type: Literal["SSD", "HDD"] = "SSD"
    labels: Mapping[str, str] = field(default_factory=dict)
    kms_key_name: pulumi.Input[str] | None = None
    """Cluster key; Bigtable needs a key in the cluster's region."""

    protect: bool = False
    """Instance ``deletion_protection``, table ``PROTECTED``, ``deletion_policy = "PREVENT"``
    and Pulumi ``protect`` on instance and table."""

    max_age: str = "2592000s"
    """Cells older than this (30 days) are garbage-collected."""

    max_versions: int = 1
    """Versions kept per cell; enrichment reads only the latest."""

    def __post_init__(self) -> None:
        if self.nodes < 1:
            msg = f"nodes {self.nodes} is invalid; a Bigtable cluster needs at least 1 node"
            raise ValueError(msg)
        if self.max_versions < 1:
            msg = f"max_versions {self.max_versions} is invalid; keep at least 1 version"
            raise ValueError(msg)


class Features(pulumi.ComponentResource):
    """Bigtable instance with one cluster and the entity features table."""

    instance: gcp.bigtable.Instance
    table: gcp.bigtable.Table
    gc_policy: gcp.bigtable.GCPolicy

    def __init__(
        self, name: str, args: FeaturesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("features", "Features"), name, None, opts)

        instance_name = resource_name("bigtable_instance", args.prefix, "features")
        self.instance = gcp.bigtable.Instance(
            f"{name}-instance",
            project=args.project,
            name=instance_name,
            display_name=instance_name,
            labels=dict(args.labels),
            clusters=[
                gcp.bigtable.InstanceClusterArgs(
                    cluster_id=resource_name("bigtable_cluster", args.prefix, "features-c1"),
                    zone=args.zone,
                    num_nodes=args.nodes,
                    storage_type=args.storage_type,
                    kms_key_name=args.kms_key_name,
                )
            ],
            deletion_protection=args.protect,
            deletion_policy=deletion_policy(args.protect),
            opts=child_opts(self, opts, protect=args.protect),
        )

        self.table = gcp.bigtable.Table(
            f"{name}-table",
            project=args.project,
            instance_name=self.instance.name,
            name=resource_name("bigtable_table", "entity_features"),
            column_families=[gcp.bigtable.TableColumnFamilyArgs(family=COLUMN_FAMILY)],
            deletion_protection="PROTECTED" if args.protect else "UNPROTECTED",
            deletion_policy=deletion_policy(args.protect),
            opts=child_opts(self, opts, protect=args.protect),
        )

        # Either rule frees a cell: only the newest versions are kept, and none longer
        # than max_age.
        self.gc_policy = gcp.bigtable.GCPolicy(
            f"{name}-gc",
            project=args.project,
            instance_name=self.instance.name,
            table=self.table.name,
            column_family=COLUMN_FAMILY,
            mode="UNION",
            max_age=gcp.bigtable.GCPolicyMaxAgeArgs(duration=args.max_age),
            max_versions=[gcp.bigtable.GCPolicyMaxVersionArgs(number=args.max_versions)],
            opts=child_opts(self, opts),
        )

        self.register_outputs({"instance": self.instance.name, "table": self.table.name})
