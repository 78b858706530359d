"""Read resource records from the stack under mocks, `pulumi preview --json` or `stack export`."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.model import Resource


class InputError(ValueError):
    """The gate's input file or stack cannot be read or is not of the expected shape."""


@dataclass(frozen=True)
class InputKind:
    """A kind of input file, with the names an error message uses to point at the fix."""

    description: str
    """Name of the kind of file, as in "preview JSON file FILE"."""
    command: str
    """Pulumi CLI command whose output the file must contain."""
    option: str
    """Gate option that reads this kind of file."""
    make_variable: str
    """`make gate` variable that passes the option."""

    def error(self, source: str, problem: str, fix: str | None = None) -> InputError:
        """Build an error that names the file, the problem and the fix."""
        fix = fix or f"pass the complete output of `{self.command}`"
        return InputError(f"{self.description} file {source} {problem}; {fix}")


PREVIEW = InputKind("preview JSON", "pulumi preview --json", "--preview-json", "PREVIEW_JSON")
EXPORT = InputKind("stack export", "pulumi stack export", "--stack-export", "STACK_EXPORT")

# Preview steps whose newState is not a resource the update keeps or creates.
_SKIPPED_OPS = frozenset(
    {"delete", "delete-replaced", "discard", "discard-replaced", "read", "read-replacement"}
)

# Text left at the decoder's error position when the input stops inside a
# literal (`tru`), a number (`1.`, `1e+`, `-`) or a \u escape (`u12`).
_CUT_TOKEN = re.compile(r"t(r(u)?)?|f(a(l(s)?)?)?|n(u(l)?)?|-|[.eE][-+]?|u[0-9a-fA-F]{0,4}")

# Plain wording for the messages of Python's json decoder.
_JSON_PROBLEMS = {
    "Expecting value": "a value is missing or is not a JSON value",
    "Expecting ',' delimiter": "a ',' is missing between two items",
    "Expecting ':' delimiter": "a ':' is missing after an object key",
    "Expecting property name enclosed in double quotes": (
        "an object key is not in double quotes, or a ',' is followed by no item"
    ),
    "Extra data": "more text follows the JSON document",
    "Invalid control character at": "a string contains a raw control character",
    "Invalid \\escape": "a string contains an invalid escape",
    "Invalid \\uXXXX escape": "a string contains an invalid \\u escape",
}

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def json_type(value: Any) -> str:
    """Name the JSON type of a decoded value, as "an object" or "a number"."""
    if isinstance(value, Mapping):
        return "an object"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def name_from_urn(urn: str) -> str:
    """Return the resource name, the last ``::`` segment of a Pulumi URN."""
    return urn.rsplit("::", 1)[-1]


def stack_from_urn(urn: str) -> str | None:
    """Return the stack name of a URN (``urn:pulumi:STACK::project::type::name``)."""
    head = urn.split("::", 1)[0]
    parts = head.split(":")
    return parts[2] if len(parts) == 3 and parts[:2] == ["urn", "pulumi"] else None


def read_json(path: Path, kind: InputKind) -> Any:
    """Load a JSON file, raising InputError with the path, the problem and the fix.

    A UTF-8 byte order mark, which some Windows tools write, is accepted.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise kind.error(str(path), "not found", "check the path") from None
    except IsADirectoryError:
        raise kind.error(
            str(path), "is a directory", f"pass the file that holds the output of `{kind.command}`"
        ) from None
    except UnicodeDecodeError as error:
        raise kind.error(
            str(path),
            f"is not UTF-8 text (byte {error.start} cannot be decoded)",
            f"save the output of `{kind.command}` as UTF-8",
        ) from error
    except OSError as error:
        reason = error.strerror or str(error)
        raise kind.error(
            str(path), f"cannot be read ({reason})", "check its permissions"
        ) from error
    if not text.strip():
        raise kind.error(str(path), "is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _syntax_error(path, kind, text, error) from error


def _syntax_error(
    path: Path, kind: InputKind, text: str, error: json.JSONDecodeError
) -> InputError:
    rest = text[error.pos :].rstrip()
    if error.msg.startswith("Unterminated string") or not rest or _CUT_TOKEN.fullmatch(rest):
        return kind.error(str(path), "ends before the JSON is complete")
    problem = _JSON_PROBLEMS.get(error.msg, error.msg)
    return kind.error(
        str(path),
        f"is not valid JSON: {problem} at line {error.lineno}, column {error.colno}",
        f"pass the output of `{kind.command}` unchanged",
    )


def _string_field(
    state: Mapping[str, Any], key: str, kind: InputKind, source: str, where: str
) -> str:
    value = state.get(key)
    if value is None:
        raise kind.error(source, f"is invalid: {where} has no '{key}' string")
    if not isinstance(value, str):
        raise kind.error(source, f"is invalid: {where}.{key} is {json_type(value)}, not a string")
    return value


def _resource(state: Any, kind: InputKind, source: str, where: str) -> Resource:
    if not isinstance(state, Mapping):
        raise kind.error(source, f"is invalid: {where} is {json_type(state)}, not an object")
    urn = _string_field(state, "urn", kind, source, where)
    type_ = _string_field(state, "type", kind, source, where)
    inputs = state.get("inputs")
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, Mapping):
        raise kind.error(
            source, f"is invalid: {where}.inputs is {json_type(inputs)}, not an object"
        )
    return Resource(
        type=type_,
        urn=urn,
        name=name_from_urn(urn),
        props=inputs,
        protect=state.get("protect") is True,
    )


def _wrong_kind_fix(document: Any, expected: InputKind) -> str | None:
    """Return a fix that names the other option when the document is the other kind of file."""
    if not isinstance(document, Mapping):
        return None
    other = EXPORT if expected is PREVIEW else PREVIEW
    marker = "deployment" if other is EXPORT else "steps"
    if marker not in document:
        return None
    return (
        f"it looks like the output of `{other.command}`, which {other.option} FILE reads "
        f"({other.make_variable}=FILE with make gate)"
    )


def _top_level_list(document: Any, path: str, kind: InputKind, source: str) -> list[Any]:
    """Return the array at the dotted ``path``, or raise an error that names what is there."""
    if not isinstance(document, Mapping):
        raise kind.error(
            source, f"contains {json_type(document)}, not an object with a '{path}' array"
        )
    value: Any = document
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    if isinstance(value, list):
        return value
    if value is None:
        problem = f"has no '{path}' array"
    else:
        problem = f"has '{path}' as {json_type(value)}, not an array"
    raise kind.error(source, problem, _wrong_kind_fix(document, kind))


def resources_from_preview(document: Any, source: str) -> list[Resource]:
    """Return the resources a preview would create or keep, one record per URN.

    Deletes, discards and reads are skipped. A replacement appears as several
    steps for one URN; the last step's newState wins.

    Raises:
        InputError: the document does not have the shape `pulumi preview --json` prints.
    """
    steps = _top_level_list(document, "steps", PREVIEW, source)

    by_urn: dict[str, Resource] = {}
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, Mapping):
            raise PREVIEW.error(source, f"is invalid: {where} is {json_type(step)}, not an object")
        if step.get("op") in _SKIPPED_OPS:
            continue
        if step.get("newState") is None:
            raise PREVIEW.error(source, f"is invalid: {where} has no newState object")
        resource = _resource(step["newState"], PREVIEW, source, f"{where}.newState")
        by_urn[resource.urn] = resource
    return list(by_urn.values())


def resources_from_export(document: Any, source: str) -> list[Resource]:
    """Return the resources of a `pulumi stack export` document, without pending deletes.

    Raises:
        InputError: the document has no ``deployment.resources`` list.
    """
    resources = _top_level_list(document, "deployment.resources", EXPORT, source)
    records: list[Resource] = []
    for index, state in enumerate(resources):
        if isinstance(state, Mapping) and state.get("delete") is True:
            continue
        records.append(_resource(state, EXPORT, source, f"deployment.resources[{index}]"))
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
