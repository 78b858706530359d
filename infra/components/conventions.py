"""Shared conventions for every component: type tokens, child options, labels and names.

Every component in this package follows the same shape, so that learning one
teaches the others:

* ``class Foo(pulumi.ComponentResource)`` with
  ``__init__(self, name: str, args: FooArgs, opts: pulumi.ResourceOptions | None = None)``,
  registered under the type token ``component_type("<area>", "Foo")``
  (``"anomaly:<area>:Foo"``), children created with ``child_opts(self, opts, ...)``
  and outputs published with ``register_outputs``.
* ``FooArgs`` is a ``@dataclass(frozen=True)`` with documented fields and safe
  defaults. Shared fields keep one name everywhere: ``prefix`` (deterministic
  name prefix, no random suffixes), ``labels`` (applied to every child that
  takes labels), ``kms_key_name`` (a Cloud KMS key; ``None`` means a
  Google-managed key) and ``protect`` (sets both the resource's own deletion
  guard, such as ``deletion_protection`` or ``force_destroy=False``, and
  Pulumi's ``protect`` option).
* An optional feature is switched on by passing its settings object and off by
  passing ``None``; there is no separate boolean next to the settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pulumi

TYPE_PREFIX = "anomaly"
"""First segment of every component type token."""

APP_LABEL_VALUE = "realtime-anomaly"
"""Value of the ``app`` label on every labelled resource of the stack."""

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
MAX_LABELS = 64
"""GCP accepts at most 64 labels on one resource."""


def component_type(area: str, class_name: str) -> str:
    """Build the type token ``anomaly:<area>:<ClassName>`` for a component."""
    return f"{TYPE_PREFIX}:{area}:{class_name}"


def child_opts(
    parent: pulumi.Resource,
    component_opts: pulumi.ResourceOptions | None = None,
    *,
    protect: bool = False,
    depends_on: Sequence[pulumi.Resource] = (),
    delete_before_replace: bool | None = None,
    ignore_changes: Sequence[str] | None = None,
) -> pulumi.ResourceOptions:
    """Build the options for a child resource of ``parent``.

    Pulumi does not pass a component's ``depends_on`` to its children, so the
    children would start before, for example, the project's APIs are enabled.
    This helper copies ``component_opts.depends_on`` onto every child and adds
    ``depends_on``. ``protect`` is always set explicitly because Pulumi
    otherwise inherits it from the parent.
    """
    inherited: list[pulumi.Resource] = []
    if component_opts is not None and component_opts.depends_on is not None:
        declared = component_opts.depends_on
        if isinstance(declared, pulumi.Resource):
            inherited.append(declared)
        elif isinstance(declared, Sequence):
            inherited.extend(item for item in declared if isinstance(item, pulumi.Resource))
        else:
            msg = (
                "component depends_on must be a Resource or a list of Resources, "
                f"got {type(declared).__name__}; pass resources, not outputs"
            )
            raise TypeError(msg)

    return pulumi.ResourceOptions(
        parent=parent,
        protect=protect,
        depends_on=[*inherited, *depends_on],
        delete_before_replace=delete_before_replace,
        ignore_changes=list(ignore_changes) if ignore_changes is not None else None,
    )


def label_errors(labels: Mapping[str, str]) -> list[str]:
    """Return one message per label key or value that GCP would reject."""
    errors: list[str] = []
    if len(labels) > MAX_LABELS:
        errors.append(f"{len(labels)} labels given; GCP accepts at most {MAX_LABELS}")
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key):
            errors.append(
                f"label key {key!r} is invalid; expected 1-63 characters of lowercase "
                "letters, digits, '_' or '-', starting with a letter"
            )
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            errors.append(
                f"label value {value!r} for key {key!r} is invalid; expected at most 63 "
                "characters of lowercase letters, digits, '_' or '-'"
            )
    return errors


def merge_labels(*layers: Mapping[str, str]) -> dict[str, str]:
    """Merge label mappings left to right (later wins) and validate the result.

    Raises:
        ValueError: a key or value breaks GCP's label rules; the message names it.
    """
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update(layer)
    errors = label_errors(merged)
    if errors:
        raise ValueError("; ".join(errors))
    return merged


def stack_labels(environment: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Build the labels every resource carries: ``environment``, ``app`` and config extras.

    The extras cannot override ``environment`` or ``app``, because policies and
    billing reports rely on those two.
    """
    base = {"environment": environment, "app": APP_LABEL_VALUE}
    return merge_labels(dict(extra or {}), base)


@dataclass(frozen=True)
class NameRule:
    """GCP naming rule for one resource kind."""

    min_length: int
    max_length: int
    pattern: str
    separator: str = "-"


NAME_RULES: Mapping[str, NameRule] = {
    # RFC 1035 names: networks, subnets, firewalls, routers, NATs.
    "compute": NameRule(1, 63, r"^[a-z]([-a-z0-9]*[a-z0-9])?$"),
    "pubsub": NameRule(3, 255, r"^[A-Za-z][-A-Za-z0-9_.~+%]*$"),
    "bigquery_dataset": NameRule(1, 1024, r"^[A-Za-z0-9_]+$", separator="_"),
    "bigquery_table": NameRule(1, 1024, r"^[A-Za-z0-9_]+$", separator="_"),
    "bigtable_instance": NameRule(6, 33, r"^[a-z][-a-z0-9]*[a-z0-9]$"),
    "bigtable_cluster": NameRule(6, 30, r"^[a-z][-a-z0-9]*[a-z0-9]$"),
    "bigtable_table": NameRule(1, 50, r"^[_a-zA-Z0-9][-_.a-zA-Z0-9]*$"),
    "bucket": NameRule(3, 63, r"^[a-z0-9][-_a-z0-9]*[a-z0-9]$"),
    "artifact_repository": NameRule(1, 63, r"^[a-z]([-a-z0-9]*[a-z0-9])?$"),
    "service_account": NameRule(6, 30, r"^[a-z]([-a-z0-9]*[a-z0-9])$"),
    "kms": NameRule(1, 63, r"^[a-zA-Z0-9_-]+$"),
    "dataflow_job": NameRule(1, 1024, r"^[a-z]([-a-z0-9]*[a-z0-9])?$"),
    "vertex_display_name": NameRule(1, 128, r"^.+$"),
}
"""Length and character rules per resource kind, from the GCP API references."""


def resource_name(kind: str, *parts: str) -> str:
    """Join ``parts`` into a GCP resource name of ``kind`` and check it against GCP's rules.

    Names are deterministic: the same parts always give the same name, so a
    re-run never renames (and so replaces) a resource.

    Raises:
        KeyError: ``kind`` is not in ``NAME_RULES``.
        ValueError: the joined name breaks the kind's length or character rule;
            the message names the result and the rule so the prefix can be shortened.
    """
    rule = NAME_RULES[kind]
    words = [part for part in parts if part]
    if rule.separator == "_":
        words = [word.replace("-", "_") for word in words]
    name = rule.separator.join(words)

    if not rule.min_length <= len(name) <= rule.max_length:
        msg = (
            f"{kind} name {name!r} has {len(name)} characters; GCP requires "
            f"{rule.min_length}-{rule.max_length}. Shorten the stack's prefix."
        )
        raise ValueError(msg)
    if not re.match(rule.pattern, name):
        msg = f"{kind} name {name!r} does not match GCP's pattern {rule.pattern}"
        raise ValueError(msg)
    return name


def iam_member(kind: str, email: pulumi.Input[str]) -> pulumi.Output[str]:
    """Build an IAM member string such as ``serviceAccount:x@y`` from an email output."""
    return pulumi.Output.from_input(email).apply(lambda value: f"{kind}:{value}")


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """Return ``items`` without duplicates, keeping the first occurrence's order."""
    return tuple(dict.fromkeys(items))


def deletion_policy(protect: bool) -> str:
    """Return the provider's ``deletion_policy``: ``PREVENT`` when protected, else ``DELETE``."""
    return "PREVENT" if protect else "DELETE"
