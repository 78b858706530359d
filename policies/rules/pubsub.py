"""Pub/Sub rules: dead-letter and retry policies on subscriptions, CMEK on topics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import NOT_SET, get, label_value, violation
from policies.settings import Settings

RULES: list[Rule] = []

TOPIC = "gcp:pubsub/topic:Topic"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"

# Pub/Sub accepts maxDeliveryAttempts from 5 to 100 (API reference,
# DeadLetterPolicy.max_delivery_attempts).
MIN_DELIVERY_ATTEMPTS = 5
MAX_DELIVERY_ATTEMPTS = 100


def is_dead_letter_review(resource: Resource, settings: Settings) -> bool:
    """Return whether the subscription is labelled as the last stop of a dead-letter topic.

    Such a subscription is where operators read dead letters. A dead-letter
    policy on it would need one more topic and subscription, and so on.
    """
    return label_value(resource.props, "purpose") in settings.dead_letter_exempt_purposes


@rule(
    RULES,
    name="pubsub-subscription-dead-letter",
    description="Subscriptions must forward undeliverable messages to a dead-letter topic.",
    severity=Severity.HIGH,
    types=[SUBSCRIPTION],
    settings=["deadLetterExemptPurposes"],
)
def dead_letter(resource: Resource, settings: Settings) -> Iterator[str]:
    if is_dead_letter_review(resource, settings):
        return
    topic = get(resource.props, "deadLetterPolicy.deadLetterTopic")
    if not topic:
        yield violation(
            resource,
            "deadLetterPolicy.deadLetterTopic",
            topic,
            "a topic (projects/P/topics/T), or a 'purpose' label of "
            f"{', '.join(settings.dead_letter_exempt_purposes) or 'none configured'} "
            "on the terminal subscription of a dead-letter topic",
        )


@rule(
    RULES,
    name="pubsub-subscription-delivery-attempts",
    description="Dead-letter policies must set maxDeliveryAttempts between 5 and 100.",
    severity=Severity.MEDIUM,
    types=[SUBSCRIPTION],
    settings=["deadLetterExemptPurposes"],
)
def delivery_attempts(resource: Resource, settings: Settings) -> Iterator[str]:
    if is_dead_letter_review(resource, settings):
        return
    attempts = get(resource.props, "deadLetterPolicy.maxDeliveryAttempts")
    in_range = (
        isinstance(attempts, int | float)
        and not isinstance(attempts, bool)
        and MIN_DELIVERY_ATTEMPTS <= attempts <= MAX_DELIVERY_ATTEMPTS
    )
    if not in_range:
        yield violation(
            resource,
            "deadLetterPolicy.maxDeliveryAttempts",
            attempts,
            f"an integer from {MIN_DELIVERY_ATTEMPTS} to {MAX_DELIVERY_ATTEMPTS}",
        )


@rule(
    RULES,
    name="pubsub-subscription-retry-policy",
    description="Subscriptions must redeliver with exponential backoff (retryPolicy).",
    severity=Severity.MEDIUM,
    types=[SUBSCRIPTION],
)
def retry_policy(resource: Resource, settings: Settings) -> Iterator[str]:
    # Without retryPolicy Pub/Sub redelivers immediately, which hammers a
    # failing subscriber; an object, even with default backoffs, enables it.
    value = get(resource.props, "retryPolicy")
    if value is NOT_SET or not isinstance(value, Mapping):
        yield violation(
            resource,
            "retryPolicy",
            value,
            'an object such as {"minimumBackoff": "10s", "maximumBackoff": "600s"}',
        )


@rule(
    RULES,
    name="pubsub-topic-cmek",
    description="Topics must encrypt messages with a customer-managed key when CMEK is required.",
    severity=Severity.HIGH,
    types=[TOPIC],
    settings=["cmekRequired"],
)
def topic_cmek(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "kmsKeyName")
    if settings.cmek_required and not value:
        yield violation(resource, "kmsKeyName", value, "a Cloud KMS key name")
