"""Tests for the Makefile: which input and options reach the gate, plan and local runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "policies" / "fixtures"
# Variables that a calling make or shell may set; each test passes its own.
INHERITED = frozenset(
    {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "STACK", "ENVIRONMENT", "PREVIEW_JSON", "STACK_EXPORT"}
    | {"FORMAT", "PY", "POLICY_CONFIG", "INPUT", "OUTPUT", "TRIAGE", "LABELS", "FEATURES"}
)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(
    target: str, *variables: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a make target with the test's interpreter, without rebuilding the environments."""
    clean = {name: value for name, value in os.environ.items() if name not in INHERITED}
    command = ["make", "--no-print-directory", "-s"]
    command += ["-o", ".venv/.installed", "-o", "policies/.venv/.installed"]
    command += [target, f"PY={sys.executable}", *variables]
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def make_gate(
    *variables: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `make gate` with JSON output."""
    return make("gate", "FORMAT=json", *variables, env=env)


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


@pytest.mark.parametrize("target", ["gate", "plan"])
def test_empty_stack_rejected(target: str) -> None:
    result = make(target, "STACK=")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "error: STACK is empty; pass STACK=dev or STACK=prod" in result.stderr
    assert "usage:" not in result.stderr


def test_gate_empty_stack_with_file() -> None:
    # With a file, an empty STACK chooses nothing and the URNs name the stack.
    result = make_gate(f"PREVIEW_JSON={FIXTURES / 'preview_pass.json'}", "STACK=")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == "prod"


def test_gate_policy_config(tmp_path: Path) -> None:
    config = tmp_path / "relaxed.json"
    levels = {"kms-key-protected": "disabled", "kms-rotation-period": "advisory"}
    config.write_text(json.dumps(levels), encoding="utf-8")
    result = make_gate(f"STACK_EXPORT={FIXTURES / 'export_fail.json'}", f"POLICY_CONFIG={config}")
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr
    assert report["config"] == str(config)
    assert [(v["policy"], v["enforcement"]) for v in report["violations"]] == [
        ("kms-rotation-period", "advisory")
    ]


def test_gate_unknown_environment_message() -> None:
    result = make_gate(f"PREVIEW_JSON={FIXTURES / 'preview_pass.json'}", "ENVIRONMENT=staging")
    assert result.returncode == 2
    assert "environment 'staging' has no policy config" in result.stderr
    assert "--policy-config FILE (POLICY_CONFIG=FILE with make gate)" in result.stderr


@pytest.mark.parametrize("variable", ["STACK=dev", "ENVIRONMENT=dev"])
def test_gate_stack_mismatch_warns(variable: str) -> None:
    result = make_gate(f"PREVIEW_JSON={FIXTURES / 'preview_pass.json'}", variable)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == "dev"
    assert (
        "the URNs name stack prod, but the policy config of environment dev applies"
    ) in result.stderr


def test_gate_stack_match_no_warning() -> None:
    result = make_gate(f"PREVIEW_JSON={FIXTURES / 'preview_pass.json'}", "STACK=prod")
    assert result.returncode == 0
    assert result.stderr == ""


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    rows = [
        {
            "event_id": f"a-{index}",
            "entity_id": "a",
            "event_time": (start + timedelta(minutes=index)).isoformat(),
            "features": {"amount": 500.0 if index == 28 else 10.0 + index % 3},
        }
        for index in range(30)
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("triage", ["gemma", "vertex", ""])
def test_run_invalid_triage(tmp_path: Path, events_file: Path, triage: str) -> None:
    output = tmp_path / "out"
    result = make("run", f"INPUT={events_file}", f"OUTPUT={output}", f"TRIAGE={triage}")
    assert result.returncode == 2
    assert "usage:" not in result.stderr
    problem = f"TRIAGE={triage} is invalid" if triage else "TRIAGE is empty"
    assert f"error: {problem}; expected local (" in result.stderr
    assert "or none (no triage)" in result.stderr
    assert "TRIAGE=vertex runs only in the Dataflow job" in result.stderr
    assert not output.exists()


@pytest.mark.slow
def test_run_features_joined(tmp_path: Path, events_file: Path) -> None:
    features = tmp_path / "features.jsonl"
    features.write_text(json.dumps({"entity_id": "a", "segment": "gold"}) + "\n")
    output = tmp_path / "out"
    result = make(
        "run", f"INPUT={events_file}", f"OUTPUT={output}", "TRIAGE=none", f"FEATURES={features}"
    )
    assert result.returncode == 0, result.stderr
    detections = (output / "detections.jsonl").read_text(encoding="utf-8").splitlines()
    assert detections
    for line in detections:
        assert json.loads(line)["context"] == {"segment": "gold"}
