"""Run every rule over resource records: the gate's evaluation, also used by the tests."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from policies.config import PackConfig
from policies.model import Enforcement, Resource, Rule, Violation
from policies.rules import ALL_RULES
from policies.unknowns import UnknownCheckingMapping, UnknownValueError

logger = logging.getLogger(__name__)


def evaluate(
    resources: Iterable[Resource],
    config: PackConfig | None = None,
    rules: Sequence[Rule] = ALL_RULES,
) -> list[Violation]:
    """Check each resource against each enabled rule and return the violations found.

    A rule that reads a value unknown until the update runs is reported as an
    advisory violation saying it was not evaluated, as ``pulumi preview``
    reports it, so that an unknown never passes or fails a mandatory rule.
    """
    config = config or PackConfig()
    violations: list[Violation] = []
    for resource in resources:
        checked = Resource(
            type=resource.type,
            urn=resource.urn,
            name=resource.name,
            props=UnknownCheckingMapping(resource.props),
            protect=resource.protect,
        )
        for rule in rules:
            level = config.enforcement(rule)
            if level is Enforcement.DISABLED or not rule.applies_to(resource.type):
                continue
            try:
                messages = list(rule.run(checked, config.settings_for(rule)))
            except UnknownValueError as error:
                logger.info("policy %s skipped %s: %s", rule.name, resource.urn, error)
                violations.append(
                    Violation(
                        policy=rule.name,
                        enforcement=Enforcement.ADVISORY,
                        severity=rule.severity,
                        urn=resource.urn,
                        message=f"not evaluated: {error}; rerun the gate on a stack export "
                        "after the update",
                    )
                )
                continue
            violations.extend(
                Violation(rule.name, level, rule.severity, resource.urn, message)
                for message in messages
            )
    return violations
