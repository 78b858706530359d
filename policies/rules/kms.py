"""Cloud KMS rules: rotation period and protection of keys from deletion."""

from __future__ import annotations

import re
from collections.abc import Iterator

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import get, show, violation
from policies.settings import Settings

RULES: list[Rule] = []

CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"

_SECONDS_PER_DAY = 86_400
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def rotation_seconds(value: object) -> float | None:
    """Parse a protobuf duration such as "7776000s"; return None when it is not one."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


@rule(
    RULES,
    name="kms-rotation-period",
    description="Crypto keys must rotate at least every maxRotationDays (90 by default).",
    severity=Severity.MEDIUM,
    types=[CRYPTO_KEY],
    settings=["maxRotationDays"],
)
def rotation_period(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "rotationPeriod")
    seconds = rotation_seconds(value)
    limit = settings.max_rotation_days * _SECONDS_PER_DAY
    if seconds is None or seconds > limit:
        yield violation(
            resource,
            "rotationPeriod",
            value,
            f'a duration of at most "{limit}s" ({settings.max_rotation_days} days)',
        )


@rule(
    RULES,
    name="kms-key-protected",
    description="Crypto keys must be protected from deletion where the environment requires it.",
    severity=Severity.CRITICAL,
    types=[CRYPTO_KEY],
    settings=["deletionProtectionRequired"],
)
def key_protected(resource: Resource, settings: Settings) -> Iterator[str]:
    # Destroying a CryptoKey destroys all its versions, and data encrypted with
    # them becomes unreadable. Either Pulumi's protect option or the provider's
    # deletionPolicy "PREVENT" stops that.
    if not settings.deletion_protection_required:
        return
    policy = get(resource.props, "deletionPolicy")
    if not resource.protect and policy != "PREVENT":
        yield violation(
            resource,
            "protect (Pulumi resource option)",
            resource.protect,
            f'true, or deletionPolicy "PREVENT" (deletionPolicy is {show(policy)})',
        )
