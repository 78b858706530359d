"""Print the resources ``pulumi up`` would create for a stack, from an offline mocked run.

Usage: ``python -m infra.plan --stack dev [--set key=value ...]``. Resources are
grouped by the component that declares them, each with the settings a reviewer
of a fork checks first: encryption key, deletion protection, labels and IAM
bindings. A count per resource type closes the report. An unknown stack or an
invalid config prints the problems and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from infra.config import ConfigError
from infra.offline import DeclaredResource, UnknownStackError, run_stack

EXIT_INVALID = 2

_NAME_KEYS = ("name", "accountId", "tableId", "datasetId", "repositoryId", "service", "displayName")


def count_noun(count: int, noun: str) -> str:
    """Return ``count`` and ``noun``, with a plural ``s`` unless the count is 1."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def short_type(type_token: str) -> str:
    """Shorten ``gcp:storage/bucket:Bucket`` to ``storage.Bucket``; components stay as they are."""
    if not type_token.startswith("gcp:"):
        return type_token
    module = type_token.split(":")[1].split("/", maxsplit=1)[0]
    return f"{module}.{type_token.rsplit(':', 1)[-1]}"


def encryption_key(inputs: Mapping[str, Any]) -> str | None:
    """Return the Cloud KMS key a resource's inputs name, wherever the type keeps it."""
    candidates: list[Any] = [
        inputs.get("kmsKeyName"),
        (inputs.get("defaultEncryptionConfiguration") or {}).get("kmsKeyName"),
        (inputs.get("encryptionConfiguration") or {}).get("kmsKeyName"),
        (inputs.get("encryption") or {}).get("defaultKmsKeyName"),
    ]
    candidates.extend(cluster.get("kmsKeyName") for cluster in inputs.get("clusters") or [])
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def key_settings(resource: DeclaredResource) -> list[str]:
    """List the settings of ``resource`` that matter for security and wiring, as ``key=value``."""
    inputs = resource.inputs
    settings: list[str] = []

    key = encryption_key(inputs)
    if key is not None:
        settings.append(f"cmek={key.rsplit('/', 1)[-1]}")
    if resource.protect:
        settings.append("protect")
    for flag in ("deletionProtection", "forceDestroy", "deletionPolicy"):
        if flag in inputs:
            settings.append(f"{flag}={_scalar(inputs[flag])}")
    if "role" in inputs:
        settings.append(f"role={inputs['role']}")
    if "member" in inputs:
        settings.append(f"member={inputs['member']}")
    labels = inputs.get("labels") or inputs.get("userLabels")
    if isinstance(labels, Mapping) and labels:
        settings.append("labels=" + ",".join(f"{k}:{v}" for k, v in sorted(labels.items())))
    return settings


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def display_name(resource: DeclaredResource) -> str:
    """Return the GCP-side name of a resource, or its Pulumi name for IAM bindings and others."""
    if "role" in resource.inputs:
        return resource.name
    for key in _NAME_KEYS:
        value = resource.inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return resource.name


def render(stack: str, resources: Sequence[DeclaredResource]) -> str:
    """Render the plan of ``stack`` as text: one section per component, then type counts."""
    components = [resource for resource in resources if not resource.custom]
    by_parent: dict[str | None, list[DeclaredResource]] = {}
    for resource in resources:
        if resource.custom:
            by_parent.setdefault(resource.parent, []).append(resource)

    custom_count = sum(1 for resource in resources if resource.custom)
    lines = [
        f"Stack {stack}: {count_noun(custom_count, 'resource')} in "
        f"{count_noun(len(components), 'component')}",
        "",
    ]
    for component in components:
        children = by_parent.pop(component.urn, [])
        lines.append(
            f"{component.name} ({component.type}), {count_noun(len(children), 'resource')}"
        )
        lines.extend(_resource_lines(children))
        lines.append("")
    for orphans in by_parent.values():
        lines.append("(outside any component)")
        lines.extend(_resource_lines(orphans))
        lines.append("")

    lines.append("Resources per type")
    counts = Counter(resource.type for resource in resources if resource.custom)
    width = max((len(short_type(token)) for token in counts), default=0)
    for token, count in sorted(counts.items()):
        lines.append(f"  {short_type(token):<{width}}  {count:>3}")
    lines.append(f"  {'total':<{width}}  {custom_count:>3}")
    return "\n".join(lines)


def _resource_lines(resources: Iterable[DeclaredResource]) -> list[str]:
    lines = []
    for resource in sorted(resources, key=lambda item: (item.type, item.name)):
        lines.append(f"  {short_type(resource.type)}  {display_name(resource)}")
        settings = key_settings(resource)
        if settings:
            lines.append(f"      {'  '.join(settings)}")
    return lines


def _parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            msg = f"--set {pair!r} is invalid; expected KEY=VALUE, e.g. --set cmek=true"
            raise ValueError(msg)
        overrides[key] = yaml.safe_load(value) if value else ""
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plan CLI and return its exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.plan",
        description="Print the resources `pulumi up` would create for a stack (offline, mocked).",
    )
    parser.add_argument(
        "--stack", required=True, help="stack name: dev, prod or any Pulumi.<stack>.yaml"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key for this run (YAML value), e.g. --set triageMode=worker",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="directory of Pulumi.yaml (default: repo root)",
    )
    args = parser.parse_args(argv)

    try:
        overrides = _parse_overrides(args.overrides)
        resources = run_stack(args.stack, overrides=overrides, project_dir=args.project_dir)
    except (UnknownStackError, ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID

    print(render(args.stack, resources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
