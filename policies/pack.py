"""Adapt the pack's rules into pulumi_policy ResourceValidationPolicy objects.

Importing this module does not start the policy server: only constructing a
``PolicyPack`` does, and ``policies/__main__.py`` is the one place that does.
"""

from __future__ import annotations

from collections.abc import Callable

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.model import Resource, Rule
from policies.rules import ALL_RULES
from policies.settings import config_schema, settings_from_config

PACK_NAME = "gcp-realtime-anomaly-security"
"""Policy pack name; CrossGuard allows letters, digits, '-', '_' and '.'."""


def make_validate(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """Build the validate callback that runs ``rule`` on one resource CrossGuard sends."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not rule.applies_to(args.resource_type):
            return
        resource = Resource(
            type=args.resource_type,
            urn=args.urn,
            name=args.name,
            props=args.props,
            protect=bool(args.opts.protect) if args.opts is not None else False,
        )
        settings = settings_from_config(
            args.get_config(), rule.settings, where=f"policy {rule.name}"
        )
        for message in rule.check(resource, settings):
            report_violation(message, None)

    return validate


def to_policy(rule: Rule) -> ResourceValidationPolicy:
    """Wrap one rule as a ResourceValidationPolicy with its metadata and config schema."""
    schema = PolicyConfigSchema(properties=config_schema(rule.settings)) if rule.settings else None
    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=make_validate(rule),
        enforcement_level=EnforcementLevel(rule.enforcement.value),
        severity=Severity(rule.severity.value),
        config_schema=schema,
    )


def build_policies() -> list[Policy]:
    """Return one policy per rule, in the order of ``policies.rules.ALL_RULES``."""
    return [to_policy(rule) for rule in ALL_RULES]
