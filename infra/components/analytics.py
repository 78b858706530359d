"""BigQuery dataset and the pipeline's output tables, with schemas from pipeline/schemas.py."""

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
from pipeline.schemas import TABLES, TableSpec, schema_json


@dataclass(frozen=True)
class AnalyticsArgs:
    """Inputs of ``Analytics``."""

    project: str
    region: str
    """Dataset location; the tables live in the same region as the rest of the stack."""

    prefix: str
    labels: Mapping[str, str] = field(default_factory=dict)
    kms_key_name: pulumi.Input[str] | None = None
    """Default key of the dataset and key of every table."""

    protect: bool = False
    """Table ``deletion_protection``, ``deletion_policy = "PREVENT"``, dataset contents kept
    on destroy, and Pulumi ``protect`` on the dataset and tables."""

    partition_expiration_days: int | None = None
    """Days a partition is kept, or ``None`` to keep data until it is deleted."""

    tables: Mapping[str, TableSpec] = field(default_factory=lambda: dict(TABLES))
    """Table definitions by key; the pipeline writes rows of exactly these schemas."""


class Analytics(pulumi.ComponentResource):
    """BigQuery dataset with one table per pipeline output, partitioned by event time."""

    dataset: gcp.bigquery.Dataset
    tables: dict[str, gcp.bigquery.Table]
    table_refs: dict[str, pulumi.Output[str]]
    """``PROJECT:DATASET.TABLE`` by table key, the format of the pipeline's table options."""

    def __init__(
        self, name: str, args: AnalyticsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("analytics", "Analytics"), name, None, opts)

        encryption = None
        if args.kms_key_name is not None:
            encryption = gcp.bigquery.DatasetDefaultEncryptionConfigurationArgs(
                kms_key_name=args.kms_key_name
            )
        self.dataset = gcp.bigquery.Dataset(
            f"{name}-dataset",
            project=args.project,
            dataset_id=resource_name("bigquery_dataset", args.prefix, "analytics"),
            location=args.region,
            description="Scored events, detections and dead letters of the anomaly pipeline.",
            labels=dict(args.labels),
            default_encryption_configuration=encryption,
            delete_contents_on_destroy=not args.protect,
            deletion_policy=deletion_policy(args.protect),
            opts=child_opts(self, opts, protect=args.protect),
        )

        self.tables = {
            key: self._table(name, key, spec, args, opts) for key, spec in args.tables.items()
        }
        self.table_refs = {
            key: pulumi.Output.concat(table.project, ":", table.dataset_id, ".", table.table_id)
            for key, table in self.tables.items()
        }
        self.register_outputs({"dataset": self.dataset.dataset_id, "tables": self.table_refs})

    def _table(
        self,
        name: str,
        key: str,
        spec: TableSpec,
        args: AnalyticsArgs,
        opts: pulumi.ResourceOptions | None,
    ) -> gcp.bigquery.Table:
        partitioning = None
        if spec.partition_field is not None:
            expiration = None
            if args.partition_expiration_days is not None:
                expiration = args.partition_expiration_days * 24 * 3600 * 1000
            partitioning = gcp.bigquery.TableTimePartitioningArgs(
                type="DAY", field=spec.partition_field, expiration_ms=expiration
            )

        encryption = None
        if args.kms_key_name is not None:
            encryption = gcp.bigquery.TableEncryptionConfigurationArgs(
                kms_key_name=args.kms_key_name
            )
        return gcp.bigquery.Table(
            f"{name}-{key.replace('_', '-')}",
            project=args.project,
            dataset_id=self.dataset.dataset_id,
            table_id=resource_name("bigquery_table", spec.table_id),
            description=spec.description,
            schema=schema_json(key),
            time_partitioning=partitioning,
            clusterings=list(spec.clustering_fields) or None,
            encryption_configuration=encryption,
            labels=dict(args.labels),
            deletion_protection=args.protect,
            deletion_policy=deletion_policy(args.protect),
            opts=child_opts(self, opts, protect=args.protect),
        )
