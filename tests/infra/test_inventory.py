"""Compare each stack's mocked resources with its expected inventory (counts and key values)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.offline import DeclaredResource

INVENTORY_DIR = Path(__file__).parent / "inventory"
STACKS = ("dev", "prod")


def load_inventory(stack: str) -> dict[str, Any]:
    inventory: dict[str, Any] = yaml.safe_load((INVENTORY_DIR / f"{stack}.yaml").read_text())
    return inventory


def mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """List differences; mappings are compared on the expected keys only, all else exactly."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path}: expected a mapping, got {actual!r}"]
        found: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found.extend(mismatches(value, actual[key], f"{path}.{key}"))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {expected!r}, got {actual!r}"]
        found = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found.extend(mismatches(want, got, f"{path}[{index}]"))
        return found
    if expected != actual:
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []


def find(resources: list[DeclaredResource], type_token: str, name: str) -> DeclaredResource:
    matches = [r for r in resources if r.type == type_token and r.name == name]
    assert len(matches) == 1, f"{type_token} {name!r}: found {len(matches)}"
    return matches[0]


@pytest.mark.parametrize("stack", STACKS)
def test_resource_counts_exact(stack, stacks):
    expected = load_inventory(stack)["counts"]
    actual = Counter(r.type for r in stacks[stack] if r.custom)
    assert dict(actual) == expected


@pytest.mark.parametrize("stack", STACKS)
def test_component_counts_exact(stack, stacks):
    expected = load_inventory(stack)["components"]
    actual = Counter(r.type for r in stacks[stack] if not r.custom)
    assert dict(actual) == expected


def inventory_cases() -> list[Any]:
    cases = []
    for stack in STACKS:
        for entry in load_inventory(stack)["resources"]:
            cases.append(pytest.param(stack, entry, id=f"{stack}-{entry['name']}"))
    return cases


@pytest.mark.parametrize(("stack", "entry"), inventory_cases())
def test_inventory_values(stack, entry, stacks):
    resource = find(stacks[stack], entry["type"], entry["name"])
    assert mismatches(entry.get("inputs", {}), resource.inputs, entry["name"]) == []
    if "protect" in entry:
        assert resource.protect is entry["protect"]


def test_mismatches_reports_nested_difference():
    expected = {"a": {"b": [1, {"c": "x"}]}}
    actual = {"a": {"b": [1, {"c": "y", "d": 2}]}, "e": 3}
    assert mismatches(expected, actual) == [".a.b[1].c: expected 'x', got 'y'"]


def test_mismatches_reports_missing_key():
    assert mismatches({"kmsKeyName": "k"}, {}) == [".kmsKeyName: missing"]
