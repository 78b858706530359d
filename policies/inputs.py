"""Read resource records from the stack under mocks, `pulumi preview --json` or `stack export`."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from policies.model import Resource


class InputError(ValueError):
    """The gate's input file or stack cannot be read or is not of the expected shape."""


# Preview steps whose newState is not a resource the update keeps or creates.
_SKIPPED_OPS = frozenset(
    {"delete", "delete-replaced", "discard", "discard-replaced", "read", "read-replacement"}
)


def name_from_urn(urn: str) -> str:
    """Return the resource name, the last ``::`` segment of a Pulumi URN."""
    return urn.rsplit("::", 1)[-1]


def stack_from_urn(urn: str) -> str | None:
    """Return the stack name of a URN (``urn:pulumi:STACK::project::type::name``)."""
    head = urn.split("::", 1)[0]
    parts = head.split(":")
    return parts[2] if len(parts) == 3 and parts[:2] == ["urn", "pulumi"] else None


def read_json(path: Path, what: str) -> Any:
    """Load a JSON file, raising InputError with the path and the fix when that fails."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} file {path} not found; check the path") from None
    except UnicodeDecodeError as error:
        raise InputError(
            f"{what} file {path} is not UTF-8 text ({error.reason} at byte {error.start}); "
            "pass the JSON file that the Pulumi CLI wrote"
        ) from error
    except OSError as error:
        raise InputError(f"{what} file {path} cannot be read: {error}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{what} file {path} is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg})"
        ) from error


def _resource(state: Any, where: str, expected: str) -> Resource:
    if not isinstance(state, Mapping):
        raise InputError(f"{where} is {type(state).__name__}; expected {expected}")
    urn, type_ = state.get("urn"), state.get("type")
    if not isinstance(urn, str) or not isinstance(type_, str):
        raise InputError(f"{where} lacks a string 'urn' and 'type'; expected {expected}")
    inputs = state.get("inputs")
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, Mapping):
        raise InputError(f"{where}.inputs is {type(inputs).__name__}; expected an object")
    return Resource(
        type=type_,
        urn=urn,
        name=name_from_urn(urn),
        props=inputs,
        protect=state.get("protect") is True,
    )


def resources_from_preview(document: Any, source: str) -> list[Resource]:
    """Return the resources a preview would create or keep, one record per URN.

    Deletes, discards and reads are skipped. A replacement appears as several
    steps for one URN; the last step's newState wins.

    Raises:
        InputError: the document does not have the shape `pulumi preview --json` prints.
    """
    expected = "an object with a 'steps' list, as printed by `pulumi preview --json`"
    if not isinstance(document, Mapping) or not isinstance(document.get("steps"), list):
        raise InputError(f"{source}: expected {expected}")

    by_urn: dict[str, Resource] = {}
    for index, step in enumerate(document["steps"]):
        where = f"{source}: steps[{index}]"
        if not isinstance(step, Mapping):
            raise InputError(f"{where} is {type(step).__name__}; expected an object with 'op'")
        if step.get("op") in _SKIPPED_OPS:
            continue
        resource = _resource(
            step.get("newState"), f"{where}.newState", "an object with urn, type and inputs"
        )
        by_urn[resource.urn] = resource
    return list(by_urn.values())


def resources_from_export(document: Any, source: str) -> list[Resource]:
    """Return the resources of a `pulumi stack export` document, without pending deletes.

    Raises:
        InputError: the document has no ``deployment.resources`` list.
    """
    deployment = document.get("deployment") if isinstance(document, Mapping) else None
    resources = deployment.get("resources") if isinstance(deployment, Mapping) else None
    if not isinstance(resources, list):
        raise InputError(
            f"{source}: expected an object with 'deployment.resources' (a list), as printed "
            "by `pulumi stack export`"
        )
    records: list[Resource] = []
    for index, state in enumerate(resources):
        if isinstance(state, Mapping) and state.get("delete") is True:
            continue
        records.append(
            _resource(
                state,
                f"{source}: deployment.resources[{index}]",
                "an object with urn, type and inputs",
            )
        )
    return records


def resources_from_stack(stack: str) -> list[Resource]:
    """Run the stack program under Pulumi mocks and return every declared resource.

    Raises:
        InputError: the offline runner is missing or rejects the stack or its config.
    """
    try:
        # Imported by name so that the gate's other modes, and type checking,
        # work in a checkout whose infra package has no offline runner.
        offline = importlib.import_module("infra.offline")
    except ImportError as error:
        raise InputError(
            f"cannot run stack {stack!r} offline: infra.offline is not importable ({error}); "
            "use --preview-json or --stack-export instead"
        ) from error
    # infra.config.ConfigError derives from pulumi.RunError, not ValueError.
    stack_config_error: type[Exception] = importlib.import_module("infra.config").ConfigError
    try:
        declared = offline.run_stack(stack)
    except (ValueError, KeyError, OSError, stack_config_error) as error:
        raise InputError(f"stack {stack!r} cannot be run under mocks: {error}") from error
    return [
        Resource(
            type=item.type,
            urn=item.urn,
            name=item.name,
            props=item.inputs,
            protect=bool(item.protect),
        )
        for item in declared
    ]
