"""Pub/Sub topics and subscriptions: events in, detections out, dead letters kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import (
    child_opts,
    component_type,
    iam_member,
    merge_labels,
    resource_name,
)

MIN_DELIVERY_ATTEMPTS = 5
MAX_DELIVERY_ATTEMPTS = 100
"""Pub/Sub accepts ``max_delivery_attempts`` from 5 to 100."""

REVIEW_PURPOSE = "dead-letter-review"
"""``purpose`` label of the last subscription on a dead-letter topic. That subscription has
no dead-letter policy of its own (it would need yet another topic), and the policy pack
recognises it by this label."""

RETENTION = "604800s"
"""7 days, the longest a subscription keeps unacknowledged messages. Dead-letter topics
retain messages as long, so acknowledged dead letters can be replayed with a seek."""


@dataclass(frozen=True)
class DeliverySettings:
    """Redelivery and dead-lettering of the subscriptions that feed a consumer."""

    max_delivery_attempts: int = 10
    """Deliveries before Pub/Sub moves a message to the dead-letter topic (5-100)."""

    minimum_backoff: str = "10s"
    maximum_backoff: str = "600s"
    ack_deadline_seconds: int = 60
    """Starting ack deadline; Dataflow extends it while a message is being processed."""

    def __post_init__(self) -> None:
        if not MIN_DELIVERY_ATTEMPTS <= self.max_delivery_attempts <= MAX_DELIVERY_ATTEMPTS:
            msg = (
                f"max_delivery_attempts {self.max_delivery_attempts} is invalid; Pub/Sub "
                f"accepts {MIN_DELIVERY_ATTEMPTS} to {MAX_DELIVERY_ATTEMPTS}"
            )
            raise ValueError(msg)


@dataclass(frozen=True)
class MessagingArgs:
    """Inputs of ``Messaging``."""

    project: str
    prefix: str
    pubsub_service_agent: pulumi.Input[str]
    """Email of the Pub/Sub service agent, which forwards messages to dead-letter topics."""

    labels: Mapping[str, str] = field(default_factory=dict)
    kms_key_name: pulumi.Input[str] | None = None
    delivery: DeliverySettings = field(default_factory=DeliverySettings)


class Messaging(pulumi.ComponentResource):
    """Topics and subscriptions of the stack.

    The job reads ``events`` through ``events-pipeline`` and publishes to
    ``detections``, which consumers read through ``detections-consumers``.
    ``dead-letter`` receives the events the job rejects, with the reason. Each
    consumer subscription forwards messages it cannot deliver to its own
    ``*-undelivered`` topic, and every dead-letter topic has a subscription, so a
    message is never dropped without a trace.
    """

    topics: dict[str, gcp.pubsub.Topic]
    subscriptions: dict[str, gcp.pubsub.Subscription]
    topic_ids: dict[str, pulumi.Output[str]]
    """``projects/P/topics/T`` by topic key."""
    subscription_ids: dict[str, pulumi.Output[str]]
    """``projects/P/subscriptions/S`` by subscription key."""

    def __init__(
        self, name: str, args: MessagingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("messaging", "Messaging"), name, None, opts)
        self._name = name
        self._args = args
        self._opts = opts
        self.topics = {}
        self.subscriptions = {}

        for key in (
            "events",
            "detections",
            "dead-letter",
            "events-undelivered",
            "detections-undelivered",
        ):
            self._topic(key)

        self._consumer_subscription("events-pipeline", "events", "events-undelivered")
        self._consumer_subscription("detections-consumers", "detections", "detections-undelivered")
        for key in ("dead-letter", "events-undelivered", "detections-undelivered"):
            self._review_subscription(f"{key}-review", key)

        self.topic_ids = {key: topic.id for key, topic in self.topics.items()}
        self.subscription_ids = {key: sub.id for key, sub in self.subscriptions.items()}
        self.register_outputs({"topics": self.topic_ids, "subscriptions": self.subscription_ids})

    def _topic(self, key: str) -> None:
        args = self._args
        self.topics[key] = gcp.pubsub.Topic(
            f"{self._name}-{key}",
            project=args.project,
            name=resource_name("pubsub", args.prefix, key),
            labels=dict(args.labels),
            kms_key_name=args.kms_key_name,
            message_retention_duration=RETENTION
            if key.endswith(("dead-letter", "undelivered"))
            else None,
            opts=child_opts(self, self._opts),
        )

    def _consumer_subscription(self, key: str, topic: str, dead_letter_topic: str) -> None:
        args = self._args
        delivery = args.delivery
        subscription = gcp.pubsub.Subscription(
            f"{self._name}-{key}",
            project=args.project,
            name=resource_name("pubsub", args.prefix, key),
            topic=self.topics[topic].id,
            labels=dict(args.labels),
            ack_deadline_seconds=delivery.ack_deadline_seconds,
            message_retention_duration=RETENTION,
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                minimum_backoff=delivery.minimum_backoff,
                maximum_backoff=delivery.maximum_backoff,
            ),
            dead_letter_policy=gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
                dead_letter_topic=self.topics[dead_letter_topic].id,
                max_delivery_attempts=delivery.max_delivery_attempts,
            ),
            opts=child_opts(self, self._opts),
        )
        self.subscriptions[key] = subscription

        # Dead-lettering works only when the Pub/Sub service agent may publish to
        # the dead-letter topic and acknowledge on the source subscription.
        agent = iam_member("serviceAccount", args.pubsub_service_agent)
        gcp.pubsub.TopicIAMMember(
            f"{self._name}-{dead_letter_topic}-agent-publisher",
            project=args.project,
            topic=self.topics[dead_letter_topic].name,
            role="roles/pubsub.publisher",
            member=agent,
            opts=child_opts(self, self._opts),
        )
        gcp.pubsub.SubscriptionIAMMember(
            f"{self._name}-{key}-agent-subscriber",
            project=args.project,
            subscription=subscription.name,
            role="roles/pubsub.subscriber",
            member=agent,
            opts=child_opts(self, self._opts),
        )

    def _review_subscription(self, key: str, topic: str) -> None:
        args = self._args
        self.subscriptions[key] = gcp.pubsub.Subscription(
            f"{self._name}-{key}",
            project=args.project,
            name=resource_name("pubsub", args.prefix, key),
            topic=self.topics[topic].id,
            labels=merge_labels(args.labels, {"purpose": REVIEW_PURPOSE}),
            ack_deadline_seconds=args.delivery.ack_deadline_seconds,
            message_retention_duration=RETENTION,
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                minimum_backoff=args.delivery.minimum_backoff,
                maximum_backoff=args.delivery.maximum_backoff,
            ),
            opts=child_opts(self, self._opts),
        )
