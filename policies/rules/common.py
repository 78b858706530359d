"""Helpers the rule modules share: reading nested properties and wording violation messages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from policies.model import Resource


class _NotSet:
    """Type of NOT_SET; false in a boolean test, like the missing value it stands for."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_SET"


NOT_SET: Any = _NotSet()
"""Marker for a property that is absent or null."""


def get(props: Mapping[str, Any], path: str) -> Any:
    """Return the value at a dotted camelCase ``path`` (``"logConfig.enable"``), or NOT_SET."""
    value: Any = props
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return NOT_SET
        value = value[part]
        if value is None:
            return NOT_SET
    return value


def items(value: Any) -> list[Any]:
    """Return ``value`` as a list when it is a JSON array, else an empty list."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return []


def show(value: Any) -> str:
    """Render a property value for a message: JSON for data, 'not set' for a missing value."""
    if value is NOT_SET:
        return "not set"
    try:
        return json.dumps(plain(value), sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def plain(value: Any) -> Any:
    """Copy read-only Mapping and Sequence views (the SDK's and the gate's) into dicts and lists."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(item) for item in value]
    return value


def violation(resource: Resource, prop: str, found: Any, expected: str) -> str:
    """Word a violation: the resource, the property, the value found and the value expected."""
    return f"{resource.type} {resource.name!r}: {prop} is {show(found)}; expected {expected}"


def label_value(props: Mapping[str, Any], key: str) -> str | None:
    """Return the value of label ``key``, or None when the resource has no such label."""
    labels = get(props, "labels")
    if not isinstance(labels, Mapping):
        return None
    value = labels.get(key)
    return value if isinstance(value, str) else None
