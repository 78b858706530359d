"""Label rule: every resource type that takes labels carries the required labels."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import get, violation
from policies.settings import Settings

RULES: list[Rule] = []

LABELLED_TYPES: Mapping[str, str] = {
    "gcp:artifactregistry/repository:Repository": "labels",
    "gcp:bigquery/dataset:Dataset": "labels",
    "gcp:bigquery/table:Table": "labels",
    "gcp:bigtable/instance:Instance": "labels",
    "gcp:cloudrunv2/service:Service": "labels",
    "gcp:compute/address:Address": "labels",
    "gcp:compute/instanceTemplate:InstanceTemplate": "labels",
    "gcp:dataflow/flexTemplateJob:FlexTemplateJob": "labels",
    "gcp:dataflow/job:Job": "labels",
    "gcp:kms/cryptoKey:CryptoKey": "labels",
    "gcp:monitoring/alertPolicy:AlertPolicy": "userLabels",
    "gcp:monitoring/notificationChannel:NotificationChannel": "userLabels",
    "gcp:pubsub/subscription:Subscription": "labels",
    "gcp:pubsub/topic:Topic": "labels",
    "gcp:secretmanager/secret:Secret": "labels",
    "gcp:storage/bucket:Bucket": "labels",
    "gcp:vertex/aiEndpoint:AiEndpoint": "labels",
}
"""Resource types that take resource labels, and the input that contains them.

Checked against pulumi_gcp by the tests. Maintain this list when the stack
starts using another labelled type. Networks, firewalls, IAM members and key
rings take no labels. Cloud Monitoring keeps resource labels in
``userLabels``, because its ``labels`` input is the channel's configuration
(such as ``email_address``).
"""


@rule(
    RULES,
    name="labels-required",
    description="Every labelled resource must carry the required labels (environment, app).",
    severity=Severity.LOW,
    types=LABELLED_TYPES,
    settings=["requiredLabels"],
)
def required_labels(resource: Resource, settings: Settings) -> Iterator[str]:
    prop = LABELLED_TYPES[resource.type]
    labels = get(resource.props, prop)
    present = labels if isinstance(labels, Mapping) else {}
    missing = [key for key in settings.required_labels if not present.get(key)]
    if missing:
        yield violation(
            resource,
            prop,
            labels,
            f"non-empty values for {', '.join(missing)} "
            f"(required: {', '.join(settings.required_labels)})",
        )
