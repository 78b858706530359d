"""Offline policy gate: check a stack, a preview or a stack export against the pack.

Usage::

    python -m policies.gate --stack dev
    python -m policies.gate --preview-json preview.json [--environment prod]
    python -m policies.gate --stack-export state.json --format json

Exit status: 0 when no mandatory policy is violated, 1 when one is, 2 when
the input or the policy config cannot be read or has the wrong shape, and 141
when the reader of stdout closes the pipe early, as `| head -1` does. 141 is
128 + SIGPIPE, the status a shell reports for a standard tool that SIGPIPE ends.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from policies.config import CONFIG_DIR, ConfigError, PackConfig, load_pack_config
from policies.evaluate import evaluate
from policies.inputs import (
    EXPORT,
    PREVIEW,
    InputError,
    read_json,
    resources_from_export,
    resources_from_preview,
    resources_from_stack,
    stack_from_urn,
)
from policies.model import Enforcement, Resource, Severity, Violation
from policies.rules import ALL_RULES
from policies.rules.common import label_value

# Named explicitly, because under `python -m policies.gate` __name__ is "__main__".
logger = logging.getLogger("policies.gate")

EXIT_OK, EXIT_VIOLATIONS, EXIT_BAD_INPUT = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
DEFAULT_ENVIRONMENT = "prod"
"""Environment assumed when nothing names one: the strictest."""

_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}
_LEVEL_ORDER = {Enforcement.MANDATORY: 0, Enforcement.ADVISORY: 1, Enforcement.DISABLED: 2}


@dataclass(frozen=True)
class Report:
    """Result of one gate run: the input, the config used and the violations found."""

    source: str
    environment: str
    config: str
    resources: int
    violations: list[Violation]

    @property
    def mandatory(self) -> int:
        """Number of violations of mandatory policies."""
        return sum(v.enforcement is Enforcement.MANDATORY for v in self.violations)

    @property
    def passed(self) -> bool:
        """Whether the gate lets the change through (no mandatory violation)."""
        return self.mandatory == 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the gate's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m policies.gate",
        description="Check the stack's resources against the security policy pack, offline.",
    )

    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--stack", help="stack to run under Pulumi mocks with its own config (dev or prod)"
    )
    source.add_argument(
        "--preview-json", type=Path, metavar="FILE", help="output of `pulumi preview --json`"
    )
    source.add_argument(
        "--stack-export", type=Path, metavar="FILE", help="output of `pulumi stack export`"
    )
    source.add_argument("--list", action="store_true", help="list the pack's policies and exit")

    parser.add_argument(
        "--environment",
        help="environment whose policy config applies (default: the stack, else the stack "
        "named in the URNs, else the resources' 'environment' label, else prod)",
    )
    parser.add_argument(
        "--policy-config",
        type=Path,
        metavar="FILE",
        help=f"policy pack config file (default: {CONFIG_DIR}/<environment>.json)",
    )
    parser.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="output format of the report and of --list (default: table)",
    )

    args = parser.parse_args(argv)
    if args.stack is not None and not args.stack.strip():
        parser.error("--stack is empty; pass a stack name such as dev or prod")
    if args.environment is not None and not args.environment.strip():
        parser.error("--environment is empty; pass an environment such as dev or prod")
    if not (args.stack or args.preview_json or args.stack_export or args.list):
        parser.error("one of --stack, --preview-json, --stack-export or --list is required")
    if args.list and (args.environment or args.policy_config):
        parser.error(
            "--environment and --policy-config have no effect with --list, which prints "
            "each policy's default enforcement; drop them"
        )
    return args


def load_resources(args: argparse.Namespace) -> tuple[str, list[Resource]]:
    """Return a description of the input and the resources it declares."""
    if args.stack:
        return f"stack {args.stack} (mocks)", resources_from_stack(args.stack)
    if args.preview_json:
        document = read_json(args.preview_json, PREVIEW)
        return str(args.preview_json), resources_from_preview(document, str(args.preview_json))
    document = read_json(args.stack_export, EXPORT)
    return str(args.stack_export), resources_from_export(document, str(args.stack_export))


def _single(values: set[str | None]) -> str | None:
    return next(iter(values)) if len(values) == 1 else None


def infer_environment(args: argparse.Namespace, resources: Sequence[Resource]) -> str:
    """Pick the environment whose config applies; see --environment's help for the order."""
    if args.environment:
        return str(args.environment)
    if args.stack:
        return str(args.stack)

    stack = _single({stack_from_urn(resource.urn) for resource in resources})
    if stack and (CONFIG_DIR / f"{stack}.json").is_file():
        return stack
    labelled = {label_value(resource.props, "environment") for resource in resources}
    labelled.discard(None)
    environment = _single(labelled)
    if environment and (CONFIG_DIR / f"{environment}.json").is_file():
        return environment

    logger.warning(
        "no environment named by --environment, the URNs or the labels; using %s",
        DEFAULT_ENVIRONMENT,
    )
    return DEFAULT_ENVIRONMENT


def load_config(args: argparse.Namespace, environment: str) -> PackConfig:
    """Load --policy-config, or the environment's file under policies/config.

    The messages name both the gate option and the `make gate` variable, because
    either may have chosen the file.

    Raises:
        ConfigError: the file does not exist or is not a valid policy config.
    """
    if args.policy_config is not None:
        if not args.policy_config.exists():
            raise ConfigError(
                f"policy config {args.policy_config} not found; check the path given to "
                "--policy-config (POLICY_CONFIG with make gate)"
            )
        return load_pack_config(args.policy_config)

    path = CONFIG_DIR / f"{environment}.json"
    if not path.exists():
        environments = ", ".join(sorted(config.stem for config in CONFIG_DIR.glob("*.json")))
        raise ConfigError(
            f"environment {environment!r} has no policy config ({path} not found); choose one "
            f"of the environments {environments}, or pass a config file with --policy-config "
            "FILE (POLICY_CONFIG=FILE with make gate)"
        )
    return load_pack_config(path)


def warn_stack_mismatch(
    args: argparse.Namespace, source: str, environment: str, resources: Sequence[Resource]
) -> None:
    """Warn when the environment's config applies to resources whose URNs name another stack.

    Only a stack that has its own policy config counts, so a CI stack such as
    ``ci-1234`` gives no warning. With --policy-config the environment does not
    choose the config, so nothing is compared.
    """
    if args.policy_config is not None:
        return
    stack = _single({stack_from_urn(resource.urn) for resource in resources})
    if stack is None or stack == environment or not (CONFIG_DIR / f"{stack}.json").is_file():
        return
    logger.warning(
        "%(source)s: the URNs name stack %(stack)s, but the policy config of environment "
        "%(environment)s applies; to check against %(stack)s's config, pass --environment "
        "%(stack)s (STACK=%(stack)s or ENVIRONMENT=%(stack)s with make gate)",
        {"source": source, "stack": stack, "environment": environment},
    )


def _sort_key(violation: Violation) -> tuple[int, int, str, str]:
    return (
        _LEVEL_ORDER[violation.enforcement],
        _SEVERITY_ORDER[violation.severity],
        violation.policy,
        violation.urn,
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def write_table(report: Report, out: TextIO) -> None:
    """Print the violations as an aligned table followed by the counts."""
    header = ("POLICY", "ENFORCEMENT", "SEVERITY", "RESOURCE", "MESSAGE")
    rows = [
        (v.policy, v.enforcement.value, v.severity.value, v.urn, v.message)
        for v in report.violations
    ]
    if rows:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
            out.write("  ".join([*cells, row[4]]) + "\n")
        out.write("\n")
    out.write(
        f"{_count(len(report.violations), 'violation')} ({report.mandatory} mandatory) in "
        f"{_count(report.resources, 'resource')} from {report.source}; "
        f"environment {report.environment}, config {report.config}\n"
    )
    out.write("PASSED\n" if report.passed else "FAILED: mandatory policies are violated\n")


def write_json(report: Report, out: TextIO) -> None:
    """Print the report as one JSON object."""
    document = {
        "source": report.source,
        "environment": report.environment,
        "config": report.config,
        "resources": report.resources,
        "passed": report.passed,
        "counts": {
            "total": len(report.violations),
            "mandatory": report.mandatory,
            "advisory": len(report.violations) - report.mandatory,
        },
        "violations": [
            {
                "policy": v.policy,
                "enforcement": v.enforcement.value,
                "severity": v.severity.value,
                "urn": v.urn,
                "message": v.message,
            }
            for v in report.violations
        ],
    }
    out.write(json.dumps(document, indent=2) + "\n")


def write_policies(out: TextIO) -> None:
    """Print every policy with its default enforcement, severity and description."""
    for rule in ALL_RULES:
        settings = f" [config: {', '.join(rule.settings)}]" if rule.settings else ""
        out.write(
            f"{rule.name:48} {rule.enforcement.value:10} {rule.severity.value:9} "
            f"{rule.description}{settings}\n"
        )


def write_policies_json(out: TextIO) -> None:
    """Print every policy as one JSON object with the fields of the --list table."""
    document = {
        "policies": [
            {
                "name": rule.name,
                "enforcement": rule.enforcement.value,
                "severity": rule.severity.value,
                "description": rule.description,
                "settings": list(rule.settings),
            }
            for rule in ALL_RULES
        ]
    }
    out.write(json.dumps(document, indent=2) + "\n")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run the gate for parsed arguments, print the report and return the exit status."""
    if args.list:
        if args.format == "json":
            write_policies_json(out)
        else:
            write_policies(out)
        return EXIT_OK

    source, resources = load_resources(args)
    if not resources:
        # An empty or truncated file would otherwise pass with nothing checked.
        raise InputError(
            f"{source} declares no resources to check; pass the complete output of "
            "`pulumi preview --json` or `pulumi stack export` for a stack with resources"
        )
    environment = infer_environment(args, resources)
    config = load_config(args, environment)
    warn_stack_mismatch(args, source, environment, resources)
    violations = sorted(evaluate(resources, config), key=_sort_key)
    report = Report(source, environment, config.source, len(resources), violations)
    if args.format == "json":
        write_json(report, out)
    else:
        write_table(report, out)
    return EXIT_OK if report.passed else EXIT_VIOLATIONS


def _run_command_line(argv: Sequence[str] | None) -> int:
    args = parse_args(argv)
    try:
        return run(args, sys.stdout)
    except (InputError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush of stdout at exit writes nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        try:
            status = _run_command_line(argv)
        finally:
            # Flushed here rather than at interpreter exit, so that a closed pipe raises
            # BrokenPipeError inside this try.
            sys.stdout.flush()
    except BrokenPipeError:
        # A reader such as `head` closes the pipe once it has the lines it needs, so end
        # without a traceback and with the status of a standard tool that SIGPIPE ends.
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    return status


if __name__ == "__main__":
    sys.exit(main())
