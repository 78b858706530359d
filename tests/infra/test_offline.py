"""The offline runner: config merging, recorded options, mocks, optional features."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from pulumi.runtime.mocks import MockCallArgs

from infra.config import ConfigError, full_key
from infra.offline import (
    MOCK_PROJECT_NUMBER,
    DeclaredResource,
    StackFileError,
    UnknownStackError,
    _Mocks,
    run_stack,
    stack_config,
)


def write_project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: realtime-anomaly\n"
        "runtime: python\n"
        "config:\n"
        "  maxWorkers: {type: integer, default: 3}\n"
        "  cmek: {type: boolean, default: false}\n"
    )
    (tmp_path / "Pulumi.qa.yaml").write_text(
        "config:\n  gcp:project: qa-project\n  realtime-anomaly:maxWorkers: 5\n"
    )
    return tmp_path


def test_stack_config_layers(tmp_path):
    root = write_project(tmp_path)
    raw = stack_config("qa", overrides={"cmek": True, "gcp:region": "us-east1"}, project_dir=root)
    assert raw == {
        full_key("maxWorkers"): 5,
        full_key("cmek"): True,
        "gcp:project": "qa-project",
        "gcp:region": "us-east1",
    }


def test_unknown_stack_lists_available(tmp_path):
    root = write_project(tmp_path)
    with pytest.raises(UnknownStackError, match=r"no Pulumi.staging.yaml .*available stacks: qa$"):
        stack_config("staging", project_dir=root)


def test_unknown_stack_lists_plain_names(tmp_path):
    root = write_project(tmp_path)
    (root / "Pulumi.dev.yaml").write_text("config: {}\n")
    with pytest.raises(UnknownStackError, match=r"available stacks: dev, qa$"):
        stack_config("staging", project_dir=root)


def test_unknown_stack_none_available(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: realtime-anomaly\nruntime: python\n")
    with pytest.raises(UnknownStackError, match=r"available stacks: none$"):
        stack_config("dev", project_dir=tmp_path)


def test_invalid_stack_name():
    with pytest.raises(UnknownStackError, match=r"stack name '\.\./dev' is invalid"):
        stack_config("../dev")


def test_invalid_config_raises_before_resources():
    with pytest.raises(ConfigError, match="maxWorkers: 0 is invalid"):
        run_stack("dev", overrides={"maxWorkers": 0})


def test_mocks_answer_project_number():
    result = _Mocks("p1").call(
        MockCallArgs("gcp:organizations/getProject:getProject", {"projectId": "p1"}, "")
    )
    assert result["number"] == MOCK_PROJECT_NUMBER
    assert result["projectId"] == "p1"


def test_mocks_reject_unknown_invoke():
    with pytest.raises(NotImplementedError, match="gcp:dns/getManagedZone:getManagedZone"):
        _Mocks("p1").call(MockCallArgs("gcp:dns/getManagedZone:getManagedZone", {}, ""))


def by_name(resources: list[DeclaredResource], name: str) -> DeclaredResource:
    (match,) = [r for r in resources if r.name == name]
    return match


def test_records_parent_and_protect(prod_resources):
    bucket = by_name(prod_resources, "storage-bucket")
    storage = by_name(prod_resources, "storage")
    assert bucket.parent == storage.urn
    assert bucket.protect is True
    assert storage.custom is False
    assert bucket.urn.endswith("::storage-bucket")


def test_records_dependencies(dev_resources):
    job = by_name(dev_resources, "pipeline-job")
    subscription = by_name(dev_resources, "messaging-events-pipeline")
    assert subscription.urn in job.depends_on
    assert subscription.urn in job.property_dependencies["parameters"]


@pytest.fixture(scope="module")
def options_stack() -> list[DeclaredResource]:
    return run_stack(
        "dev",
        overrides={
            "cmek": True,
            "iapSsh": True,
            "cloudNat": True,
            "triageMode": "worker",
            "workerMachineType": "g2-standard-8",
            "quotaContactEmail": "quota@example.com",
        },
    )


def test_options_add_resources(options_stack):
    counts = Counter(r.type for r in options_stack)
    assert counts["gcp:compute/firewall:Firewall"] == 2
    assert counts["gcp:compute/router:Router"] == 1
    assert counts["gcp:compute/routerNat:RouterNat"] == 1
    assert counts["gcp:kms/cryptoKey:CryptoKey"] == 5
    assert counts["gcp:cloudquota/sQuotaPreference:SQuotaPreference"] >= 1
    assert counts["anomaly:serving:ModelServing"] == 0


def test_worker_triage_parameters(options_stack):
    job = by_name(options_stack, "pipeline-job")
    assert job.inputs["parameters"]["triage_handler"] == "local"
    assert "vertex_endpoint" not in job.inputs["parameters"]
    assert job.inputs["machineType"] == "g2-standard-8"


def test_dev_keys_stay_deletable(options_stack):
    for key in [r for r in options_stack if r.type == "gcp:kms/cryptoKey:CryptoKey"]:
        assert key.protect is False
        assert key.inputs["deletionPolicy"] == "DELETE"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("config:\n  gcp:project: [oops\n", "is not valid YAML"),
        ("- a list\n", "holds a list; expected a mapping with a 'config' key"),
    ],
)
def test_stack_file_invalid(tmp_path, content, fragment):
    root = write_project(tmp_path)
    (root / "Pulumi.qa.yaml").write_text(content)
    with pytest.raises(StackFileError, match=re.escape(fragment)):
        stack_config("qa", project_dir=root)


def test_event_loop_closed_at_exit():
    # atexit runs hooks in reverse order, so these checks run after run_stack's hook.
    script = (
        "import asyncio, atexit\n"
        "from infra import offline\n"
        "atexit.register(lambda: print('threads', len(offline._THREAD_LOOPS), "
        "all(loop.is_closed() for loop in offline._THREAD_LOOPS)))\n"
        "atexit.register(lambda: print('closed', "
        "asyncio.get_event_loop_policy().get_event_loop().is_closed()))\n"
        "offline.run_stack('dev')\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    closed_main, closed_threads = completed.stdout.strip().splitlines()[-2:]
    assert closed_main == "closed True"
    assert closed_threads.startswith("threads ")
    assert closed_threads.endswith(" True")
    assert closed_threads != "threads 0 True"
    assert "Traceback" not in completed.stderr
