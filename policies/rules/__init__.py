"""All rules of the pack, grouped by service in the sibling modules."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import Rule
from policies.rules import (
    bigquery,
    bigtable,
    dataflow,
    iam,
    kms,
    labels,
    network,
    pubsub,
    quotas,
    storage,
    vertex,
)

ALL_RULES: tuple[Rule, ...] = (
    *network.RULES,
    *storage.RULES,
    *pubsub.RULES,
    *bigquery.RULES,
    *bigtable.RULES,
    *kms.RULES,
    *dataflow.RULES,
    *vertex.RULES,
    *iam.RULES,
    *quotas.RULES,
    *labels.RULES,
)


def _index(rules: tuple[Rule, ...]) -> Mapping[str, Rule]:
    by_name: dict[str, Rule] = {}
    for item in rules:
        if item.name in by_name:
            raise ValueError(f"two rules are named {item.name!r}; rule names must be unique")
        by_name[item.name] = item
    return by_name


RULES_BY_NAME: Mapping[str, Rule] = _index(ALL_RULES)
