"""The gate's command line: input modes, environments, output formats and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policies import gate
from policies.config import CONFIG_DIR
from policies.inputs import name_from_urn, resources_from_preview, stack_from_urn
from policies.rules import ALL_RULES

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def run_gate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = gate.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("option", "fixture", "status", "resources"),
    [
        ("--preview-json", "preview_pass.json", 0, 4),
        ("--preview-json", "preview_fail.json", 1, 2),
        ("--stack-export", "export_pass.json", 0, 4),
        ("--stack-export", "export_fail.json", 1, 3),
    ],
)
def test_gate_fixture(
    capsys: pytest.CaptureFixture[str], option: str, fixture: str, status: int, resources: int
) -> None:
    code, out, _ = run_gate(capsys, option, str(FIXTURES / fixture), "--format", "json")
    report = json.loads(out)
    assert code == status
    assert report["resources"] == resources
    assert report["environment"] == "prod"
    assert report["passed"] is (status == 0)
    assert (report["counts"]["mandatory"] > 0) is (status == 1)


def test_preview_fail_policies(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_gate(
        capsys, "--preview-json", str(FIXTURES / "preview_fail.json"), "--format", "json"
    )
    violations = json.loads(out)["violations"]
    assert {v["policy"] for v in violations} == {
        "network-firewall-no-public-ingress",
        "network-firewall-no-public-admin-ports",
        "storage-uniform-bucket-level-access",
    }
    first = violations[0]
    assert set(first) == {"policy", "enforcement", "severity", "urn", "message"}
    assert first["severity"] == "critical"


def test_export_fail_policies(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_gate(
        capsys, "--stack-export", str(FIXTURES / "export_fail.json"), "--format", "json"
    )
    policies = {v["policy"] for v in json.loads(out)["violations"]}
    assert policies == {"kms-key-protected", "kms-rotation-period"}


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_gate(capsys, "--stack-export", str(FIXTURES / "export_fail.json"))
    lines = out.splitlines()
    assert code == 1
    assert lines[0].split() == ["POLICY", "ENFORCEMENT", "SEVERITY", "RESOURCE", "MESSAGE"]
    assert lines[1].startswith("kms-key-protected ")
    assert "2 violations (2 mandatory) in 3 resources" in out
    assert lines[-1] == "FAILED: mandatory policies are violated"


def test_table_output_passing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_gate(capsys, "--preview-json", str(FIXTURES / "preview_pass.json"))
    assert code == 0
    assert out.splitlines()[-1] == "PASSED"
    assert "POLICY" not in out


def test_dev_environment_relaxes(capsys: pytest.CaptureFixture[str]) -> None:
    # The same unprotected key passes under dev's config, which needs no deletion protection.
    code, out, _ = run_gate(
        capsys,
        "--stack-export",
        str(FIXTURES / "export_fail.json"),
        "--environment",
        "dev",
        "--format",
        "json",
    )
    report = json.loads(out)
    assert code == 1
    assert report["environment"] == "dev"
    assert {v["policy"] for v in report["violations"]} == {"kms-rotation-period"}


def test_policy_config_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(
        tmp_path,
        "config.json",
        {"kms-rotation-period": "advisory", "kms-key-protected": "disabled"},
    )
    code, out, _ = run_gate(
        capsys,
        "--stack-export",
        str(FIXTURES / "export_fail.json"),
        "--policy-config",
        config,
        "--format",
        "json",
    )
    report = json.loads(out)
    assert code == 0
    assert report["config"] == config
    assert [(v["policy"], v["enforcement"]) for v in report["violations"]] == [
        ("kms-rotation-period", "advisory")
    ]


def _step(urn: str, inputs: dict[str, Any], op: str = "create") -> dict[str, Any]:
    type_ = urn.split("::")[2]
    return {"op": op, "urn": urn, "newState": {"urn": urn, "type": type_, "inputs": inputs}}


def test_environment_from_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    urn = "urn:pulumi:ci-1234::anomaly::gcp:pubsub/topic:Topic::events"
    labels = {"environment": "dev", "app": "realtime-anomaly"}
    preview = write(tmp_path, "p.json", {"steps": [_step(urn, {"labels": labels})]})
    code, out, _ = run_gate(capsys, "--preview-json", preview, "--format", "json")
    report = json.loads(out)
    assert report["environment"] == "dev"
    assert code == 0


def test_environment_defaults_to_prod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    urn = "urn:pulumi:ci-1234::anomaly::gcp:pubsub/topic:Topic::events"
    labels = {"environment": "dev", "app": "realtime-anomaly"}
    steps = [_step(urn, {"labels": labels}), _step(urn + "2", {"labels": {"environment": "qa"}})]
    preview = write(tmp_path, "p.json", {"steps": steps})
    code, out, _ = run_gate(capsys, "--preview-json", preview, "--format", "json")
    report = json.loads(out)
    assert report["environment"] == "prod"
    assert code == 1


def test_unknown_value_not_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    urn = "urn:pulumi:prod::anomaly::gcp:dataflow/flexTemplateJob:FlexTemplateJob::job"
    inputs = {
        "ipConfiguration": "WORKER_IP_PRIVATE",
        "subnetwork": "regions/r/subnetworks/s",
        "serviceAccountEmail": UNKNOWN_STRING,
        "kmsKeyName": UNKNOWN_STRING,
        "enableStreamingEngine": True,
        "maxWorkers": 4,
        "labels": {"environment": "prod", "app": "a"},
    }
    preview = write(tmp_path, "p.json", {"steps": [_step(urn, inputs)]})
    code, out, _ = run_gate(capsys, "--preview-json", preview, "--format", "json")
    violations = json.loads(out)["violations"]
    assert code == 0
    assert {v["policy"] for v in violations} == {
        "dataflow-dedicated-service-account",
        "dataflow-cmek",
    }
    for violation in violations:
        assert violation["enforcement"] == "advisory"
        assert "not evaluated" in violation["message"]


@pytest.mark.parametrize(
    ("option", "content", "fragment"),
    [
        ("--preview-json", None, "preview JSON file {path} not found; check the path"),
        ("--stack-export", None, "stack export file {path} not found; check the path"),
        (
            "--preview-json",
            "{not json",
            "preview JSON file {path} is not valid JSON: an object key is not in double quotes, "
            "or a ',' is followed by no item at line 1, column 2; pass the output of "
            "`pulumi preview --json` unchanged",
        ),
        (
            "--stack-export",
            '{"deployment": {}} x',
            "stack export file {path} is not valid JSON: more text follows the JSON document at "
            "line 1, column 20",
        ),
        (
            "--preview-json",
            "[]",
            "preview JSON file {path} contains an array, not an object with a 'steps' array; "
            "pass the complete output of `pulumi preview --json`",
        ),
        (
            "--preview-json",
            '{"steps": {}}',
            "preview JSON file {path} has 'steps' as an object, not an array",
        ),
        (
            "--preview-json",
            '{"steps": [3]}',
            "preview JSON file {path} is invalid: steps[0] is a number, not an object",
        ),
        (
            "--preview-json",
            '{"steps": [{"op": "create", "newState": {"type": "t"}}]}',
            "is invalid: steps[0].newState has no 'urn' string",
        ),
        (
            "--preview-json",
            '{"steps": [{"op": "create", "newState": {"urn": "u", "type": 7}}]}',
            "is invalid: steps[0].newState.type is a number, not a string",
        ),
        (
            "--preview-json",
            '{"steps": [{"op": "create", "newState": []}]}',
            "is invalid: steps[0].newState is an array, not an object",
        ),
        (
            "--preview-json",
            '{"steps": [{"op": "create", "newState": {"urn": "u", "type": "t", "inputs": []}}]}',
            "is invalid: steps[0].newState.inputs is an array, not an object",
        ),
        (
            "--stack-export",
            '{"deployment": {}}',
            "stack export file {path} has no 'deployment.resources' array; pass the complete "
            "output of `pulumi stack export`",
        ),
        (
            "--stack-export",
            '{"deployment": {"resources": ["x"]}}',
            "stack export file {path} is invalid: deployment.resources[0] is a string, "
            "not an object; pass the complete output of `pulumi stack export`",
        ),
    ],
)
def test_bad_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    content: str | None,
    fragment: str,
) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run_gate(capsys, option, str(path))
    assert code == 2
    assert out == ""
    assert fragment.format(path=path) in err


@pytest.mark.parametrize("content", ["", " \n\t\n"], ids=["empty", "whitespace"])
@pytest.mark.parametrize(
    ("option", "command"),
    [("--preview-json", "pulumi preview --json"), ("--stack-export", "pulumi stack export")],
)
def test_input_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, command: str, content: str
) -> None:
    path = tmp_path / "input.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run_gate(capsys, option, str(path))
    assert code == 2
    assert out == ""
    assert f"file {path} is empty; pass the complete output of `{command}`" in err
    assert "Expecting value" not in err


@pytest.mark.parametrize(
    ("option", "fixture", "command"),
    [
        ("--preview-json", "preview_fail.json", "pulumi preview --json"),
        ("--stack-export", "export_fail.json", "pulumi stack export"),
    ],
)
def test_input_truncated_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, fixture: str, command: str
) -> None:
    # Every cut of a real file, inside strings, numbers, literals and between
    # tokens, reads as one that ends early, never as a JSON syntax error.
    text = (FIXTURES / fixture).read_text(encoding="utf-8").rstrip()
    path = tmp_path / "input.json"
    expected = f"file {path} ends before the JSON is complete; pass the complete output of"
    for end in range(1, len(text)):
        if not text[:end].strip():
            continue
        path.write_text(text[:end], encoding="utf-8")
        code, out, err = run_gate(capsys, option, str(path))
        assert code == 2, end
        assert out == "", end
        assert f"{expected} `{command}`\n" in err, (end, err)


def test_input_truncated_inside_escapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps({"steps": [{"v": [-1.5e-3, True, False, None, 'é\\"☃😀']}]})
    path = tmp_path / "preview.json"
    for end in range(1, len(text)):
        path.write_text(text[:end], encoding="utf-8")
        _, _, err = run_gate(capsys, "--preview-json", str(path))
        assert "ends before the JSON is complete" in err, (text[:end], err)


def test_preview_step_without_new_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "preview.json", {"steps": [{"op": "create", "urn": "u"}]})
    code, out, err = run_gate(capsys, "--preview-json", path)
    assert code == 2
    assert out == ""
    assert (
        f"error: preview JSON file {path} is invalid: steps[0] has no newState object; "
        "pass the complete output of `pulumi preview --json`\n"
    ) == err


@pytest.mark.parametrize(
    ("option", "fixture", "fix"),
    [
        (
            "--preview-json",
            "export_pass.json",
            "it looks like the output of `pulumi stack export`, which --stack-export FILE "
            "reads (STACK_EXPORT=FILE with make gate)",
        ),
        (
            "--stack-export",
            "preview_pass.json",
            "it looks like the output of `pulumi preview --json`, which --preview-json FILE "
            "reads (PREVIEW_JSON=FILE with make gate)",
        ),
    ],
)
def test_input_other_kind_of_file(
    capsys: pytest.CaptureFixture[str], option: str, fixture: str, fix: str
) -> None:
    code, _, err = run_gate(capsys, option, str(FIXTURES / fixture))
    assert code == 2
    assert fix in err


def test_input_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_gate(capsys, "--stack-export", str(tmp_path))
    assert code == 2
    assert f"stack export file {tmp_path} is a directory; pass the file that holds" in err


def test_input_byte_order_mark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "preview.json"
    path.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "preview_pass.json").read_bytes())
    code, out, _ = run_gate(capsys, "--preview-json", str(path), "--format", "json")
    assert code == 0
    assert json.loads(out)["resources"] == 4


def test_bad_policy_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "c.json", {"dataflow-max-workers": {"maxWorkers": "ten"}})
    code, _, err = run_gate(
        capsys, "--stack-export", str(FIXTURES / "export_pass.json"), "--policy-config", config
    )
    assert code == 2
    assert "maxWorkers is 'ten'; expected an integer" in err


def test_unknown_environment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_gate(
        capsys, "--stack-export", str(FIXTURES / "export_pass.json"), "--environment", "qa"
    )
    assert code == 2
    assert out == ""
    assert "environment 'qa' has no policy config" in err
    assert "choose one of the environments dev, prod" in err
    assert "--policy-config FILE (POLICY_CONFIG=FILE with make gate)" in err


def test_policy_config_not_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.json"
    code, _, err = run_gate(
        capsys,
        "--stack-export",
        str(FIXTURES / "export_pass.json"),
        "--policy-config",
        str(missing),
    )
    assert code == 2
    assert (
        f"policy config {missing} not found; check the path given to --policy-config "
        "(POLICY_CONFIG with make gate)"
    ) in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", ""], "--stack is empty; pass a stack name such as dev or prod"),
        (
            ["--stack", "dev", "--environment", " "],
            "--environment is empty; pass an environment such as dev or prod",
        ),
    ],
    ids=["stack", "environment"],
)
def test_empty_option_rejected(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gate.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def gate_process(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run the gate as a user does, so that its log lines reach stderr."""
    return subprocess.run(
        [sys.executable, "-m", "policies.gate", "--format", "json", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("option", "fixture", "status"),
    [("--preview-json", "preview_pass.json", 0), ("--stack-export", "export_fail.json", 1)],
)
def test_stack_mismatch_warns(option: str, fixture: str, status: int) -> None:
    # The fixtures' URNs name the prod stack.
    result = gate_process(option, str(FIXTURES / fixture), "--environment", "dev")
    assert result.returncode == status
    assert json.loads(result.stdout)["environment"] == "dev"
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("WARNING policies.gate: ")
    assert "the URNs name stack prod, but the policy config of environment dev applies" in warning
    assert "pass --environment prod (STACK=prod or ENVIRONMENT=prod with make gate)" in warning


def test_stack_match_no_warning() -> None:
    result = gate_process(
        "--preview-json", str(FIXTURES / "preview_pass.json"), "--environment", "prod"
    )
    assert result.returncode == 0
    assert result.stderr == ""


def test_stack_without_config_no_warning(tmp_path: Path) -> None:
    urn = "urn:pulumi:ci-1234::anomaly::gcp:pubsub/topic:Topic::events"
    labels = {"environment": "dev", "app": "realtime-anomaly"}
    preview = write(tmp_path, "p.json", {"steps": [_step(urn, {"labels": labels})]})
    result = gate_process("--preview-json", preview, "--environment", "dev")
    assert result.returncode == 0
    assert result.stderr == ""


def test_stack_mismatch_policy_config_no_warning() -> None:
    config = str(CONFIG_DIR / "dev.json")
    fixture = str(FIXTURES / "preview_pass.json")
    result = gate_process(
        "--preview-json", fixture, "--environment", "dev", "--policy-config", config
    )
    assert result.returncode == 0
    assert result.stderr == ""


def test_source_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gate.main([])
    assert exit_info.value.code == 2
    assert "one of --stack, --preview-json, --stack-export or --list" in capsys.readouterr().err


def test_list_policies(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_gate(capsys, "--list")
    assert code == 0
    assert len(out.splitlines()) >= 30
    assert "[config: cmekRequired]" in out


def test_list_policies_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_gate(capsys, "--list", "--format", "json")
    policies = json.loads(out)["policies"]
    assert code == 0
    assert [policy["name"] for policy in policies] == [rule.name for rule in ALL_RULES]
    assert set(policies[0]) == {"name", "enforcement", "severity", "description", "settings"}
    cmek = next(policy for policy in policies if policy["name"] == "pubsub-topic-cmek")
    assert cmek["settings"] == ["cmekRequired"]


@pytest.mark.parametrize("option", ["--environment", "--policy-config"])
def test_list_rejects_config_options(capsys: pytest.CaptureFixture[str], option: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gate.main(["--list", option, "dev"])
    assert exit_info.value.code == 2
    assert "--environment and --policy-config have no effect with --list" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--list"],
        ["--list", "--format", "json"],
        ["--preview-json", str(FIXTURES / "preview_fail.json")],
    ],
    ids=["list", "list-json", "report"],
)
def test_closed_pipe_exits_quietly(argv: list[str]) -> None:
    # A pipe whose reader is already gone, as after `| head -1` has read its line.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "policies.gate", *argv],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == gate.EXIT_BROKEN_PIPE == 141


def test_table_counts_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = json.loads((FIXTURES / "preview_fail.json").read_text(encoding="utf-8"))["steps"]
    bucket = [step for step in steps if step["urn"].endswith("::archive")]
    preview = write(tmp_path, "preview.json", {"steps": bucket})
    code, out, _ = run_gate(capsys, "--preview-json", preview)
    assert code == 1
    assert f"1 violation (1 mandatory) in 1 resource from {preview};" in out


def test_preview_skips_deletes() -> None:
    urn = "urn:pulumi:dev::anomaly::gcp:storage/bucket:Bucket::old"
    steps = [_step(urn, {}, op="delete"), _step(urn, {}, op="discard"), _step(urn, {}, op="read")]
    assert resources_from_preview({"steps": steps}, "inline") == []


def test_preview_last_step_wins() -> None:
    urn = "urn:pulumi:dev::anomaly::gcp:storage/bucket:Bucket::b"
    steps = [_step(urn, {"v": 1}, op="replace"), _step(urn, {"v": 2}, op="create-replacement")]
    (resource,) = resources_from_preview({"steps": steps}, "inline")
    assert resource.props == {"v": 2}
    assert resource.name == "b"


def test_preview_protect_read() -> None:
    urn = "urn:pulumi:dev::anomaly::gcp:kms/cryptoKey:CryptoKey::k"
    step = _step(urn, {})
    step["newState"]["protect"] = True
    (resource,) = resources_from_preview({"steps": [step]}, "inline")
    assert resource.protect is True


@pytest.mark.parametrize(
    ("urn", "stack", "name"),
    [
        ("urn:pulumi:prod::anomaly::gcp:storage/bucket:Bucket::raw", "prod", "raw"),
        ("urn:pulumi:dev::anomaly::anomaly:x:Y$gcp:pubsub/topic:Topic::t", "dev", "t"),
        ("not-a-urn", None, "not-a-urn"),
    ],
)
def test_urn_parts(urn: str, stack: str | None, name: str) -> None:
    assert stack_from_urn(urn) == stack
    assert name_from_urn(urn) == name


# Importing pulumi_gcp warns about its deprecated aliases.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_stack_mode(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_gate(capsys, "--stack", "dev", "--format", "json")
    report = json.loads(out)
    assert report["source"] == "stack dev (mocks)"
    assert report["environment"] == "dev"
    assert report["resources"] > 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_stack_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_gate(capsys, "--stack", "qa")
    assert code == 2
    assert out == ""
    assert "stack 'qa' cannot be run under mocks" in err


def test_bad_input_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "preview.json"
    path.write_bytes(b'{"steps": []}\xff')
    code, out, err = run_gate(capsys, "--preview-json", str(path))
    assert code == 2
    assert out == ""
    assert f"preview JSON file {path} is not UTF-8 text" in err


def test_stack_with_invalid_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stack whose config fails validation is unreadable input (2), not a violation (1).
    from infra import offline

    real_run_stack = offline.run_stack

    def run_with_bad_config(stack: str, **kwargs: Any) -> Any:
        return real_run_stack(stack, overrides={"maxWorkers": 0}, **kwargs)

    monkeypatch.setattr(offline, "run_stack", run_with_bad_config)
    code, out, err = run_gate(capsys, "--stack", "dev", "--format", "json")
    assert code == 2
    assert out == ""
    assert "stack 'dev' cannot be run under mocks" in err
    assert "realtime-anomaly:maxWorkers" in err


@pytest.mark.parametrize(
    ("option", "content"),
    [
        ("--preview-json", '{"steps": []}'),
        ("--stack-export", '{"deployment": {"resources": []}}'),
    ],
)
def test_empty_input_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, content: str
) -> None:
    path = tmp_path / "input.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run_gate(capsys, option, str(path))
    assert code == 2
    assert out == ""
    assert "declares no resources to check" in err
