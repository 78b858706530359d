"""Resource records, rules and violations shared by the rules, the gate and the Pulumi adapter.

Nothing here imports ``pulumi_policy``, so the main environment (which cannot
install it) can run every rule. ``policies.pack`` wraps the same ``Rule``
objects as CrossGuard policies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from policies.settings import Settings


class Enforcement(StrEnum):
    """Enforcement level of a policy: CrossGuard's levels, without ``remediate``."""

    ADVISORY = "advisory"
    MANDATORY = "mandatory"
    DISABLED = "disabled"


class Severity(StrEnum):
    """How much harm a violation can do, using CrossGuard's severity names."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Resource:
    """One resource as a policy receives it: type token, URN, name and engine (camelCase) inputs.

    ``protect`` is Pulumi's ``protect`` resource option. Preview JSON and
    stack exports omit it when it is false, so readers store False for a
    missing field.
    """

    type: str
    urn: str
    name: str
    props: Mapping[str, Any]
    protect: bool = False


@dataclass(frozen=True)
class Violation:
    """One rule broken by one resource, with the enforcement level in force for this run."""

    policy: str
    enforcement: Enforcement
    severity: Severity
    urn: str
    message: str


Check = Callable[[Resource, Settings], Iterable[str]]
"""A rule body: yields one message per problem found on the resource."""


@dataclass(frozen=True)
class Rule:
    """A named check over resources of some types, with its default enforcement and severity.

    ``resource_types`` empty means the rule decides itself which types it
    applies to (the IAM rules match every ``*IamMember`` type of every
    service). ``settings`` names the pack configuration keys the rule reads;
    they become its CrossGuard config schema.
    """

    name: str
    description: str
    severity: Severity
    enforcement: Enforcement
    check: Check
    resource_types: frozenset[str] = frozenset()
    applies: Callable[[str], bool] | None = None
    settings: tuple[str, ...] = ()

    def applies_to(self, resource_type: str) -> bool:
        """Return whether the rule checks resources of ``resource_type``."""
        if self.applies is not None:
            return self.applies(resource_type)
        return resource_type in self.resource_types

    def run(self, resource: Resource, settings: Settings) -> Iterator[str]:
        """Yield the rule's messages for ``resource``, or nothing when the type does not apply."""
        if self.applies_to(resource.type):
            yield from self.check(resource, settings)


def rule(
    registry: list[Rule],
    *,
    name: str,
    description: str,
    severity: Severity,
    enforcement: Enforcement = Enforcement.MANDATORY,
    types: Iterable[str] = (),
    applies: Callable[[str], bool] | None = None,
    settings: Iterable[str] = (),
) -> Callable[[Check], Check]:
    """Register the decorated check as a ``Rule`` in ``registry`` and return it unchanged."""

    def register(check: Check) -> Check:
        registry.append(
            Rule(
                name=name,
                description=description,
                severity=severity,
                enforcement=enforcement,
                check=check,
                resource_types=frozenset(types),
                applies=applies,
                settings=tuple(settings),
            )
        )
        return check

    return register
