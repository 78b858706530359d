"""Tests for `make gate`: which input and which policy config reach the gate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "policies" / "fixtures"
# Variables that a calling make or shell may set; each test passes its own.
INHERITED = frozenset(
    {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "STACK", "ENVIRONMENT", "PREVIEW_JSON", "STACK_EXPORT"}
    | {"FORMAT", "PY"}
)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_gate(
    *variables: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `make gate` with the test's interpreter, without rebuilding the environments."""
    clean = {name: value for name, value in os.environ.items() if name not in INHERITED}
    command = ["make", "--no-print-directory", "-s"]
    command += ["-o", ".venv/.installed", "-o", "policies/.venv/.installed"]
    command += ["gate", f"PY={sys.executable}", "FORMAT=json", *variables]
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# The fixtures' URNs name the prod stack, so the gate picks prod when nothing else does.
@pytest.mark.parametrize(
    ("variables", "environment"),
    [
        ([f"PREVIEW_JSON={FIXTURES / 'preview_pass.json'}"], "prod"),
        ([f"PREVIEW_JSON={FIXTURES / 'preview_pass.json'}", "STACK=dev"], "dev"),
        ([f"STACK_EXPORT={FIXTURES / 'export_pass.json'}", "STACK=dev"], "dev"),
        ([f"PREVIEW_JSON={FIXTURES / 'preview_pass.json'}", "ENVIRONMENT=dev"], "dev"),
        (
            [f"PREVIEW_JSON={FIXTURES / 'preview_pass.json'}", "STACK=dev", "ENVIRONMENT=dev"],
            "dev",
        ),
    ],
)
def test_gate_file_environment(variables: list[str], environment: str) -> None:
    result = make_gate(*variables)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == environment


def test_gate_stack_from_shell_environment() -> None:
    result = make_gate(f"STACK_EXPORT={FIXTURES / 'export_pass.json'}", env={"STACK": "dev"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == "dev"


def test_gate_stack_conflicts_with_environment() -> None:
    preview = FIXTURES / "preview_pass.json"
    result = make_gate(f"PREVIEW_JSON={preview}", "STACK=dev", "ENVIRONMENT=prod")
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        "error: STACK=dev and ENVIRONMENT=prod choose different policy configs for "
        f"PREVIEW_JSON={preview}; pass only one of them, or the same value to both"
    ) in result.stderr
