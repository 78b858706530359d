"""The plan printer: report layout, key settings, and exit status on bad input."""

from __future__ import annotations

import pytest

from infra.offline import DeclaredResource
from infra.plan import EXIT_INVALID, encryption_key, main, render, short_type


def test_short_type():
    assert short_type("gcp:storage/bucket:Bucket") == "storage.Bucket"
    assert short_type("anomaly:storage:Storage") == "anomaly:storage:Storage"


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"kmsKeyName": "k1"}, "k1"),
        ({"encryption": {"defaultKmsKeyName": "k2"}}, "k2"),
        ({"defaultEncryptionConfiguration": {"kmsKeyName": "k3"}}, "k3"),
        ({"clusters": [{"kmsKeyName": "k4"}]}, "k4"),
        ({"labels": {"a": "b"}}, None),
    ],
)
def test_encryption_key(inputs, expected):
    assert encryption_key(inputs) == expected


def test_render_prod_sections(prod_resources):
    report = render("prod", prod_resources)
    lines = report.splitlines()
    assert lines[0].startswith("Stack prod: ")
    assert "storage (anomaly:storage:Storage), 2 resources" in lines
    bucket_line = lines.index("  storage.Bucket  anomaly-blueprint-prod-anomaly-prod-dataflow")
    settings = lines[bucket_line + 1]
    assert "cmek=anomaly-prod-storage" in settings
    assert "protect" in settings
    assert "forceDestroy=false" in settings
    assert "  kms.CryptoKey                                 5" in lines


def test_render_counts_singular(prod_resources):
    lines = render("prod", prod_resources).splitlines()
    assert "triage-model (anomaly:serving:ModelServing), 1 resource" in lines
    assert not [line for line in lines if " 1 resources" in line or " 1 components" in line]


def test_render_header_singular():
    component = DeclaredResource(
        type="anomaly:storage:Storage",
        name="storage",
        urn="urn:pulumi:qa::p::anomaly:storage:Storage::storage",
        inputs={},
        protect=False,
        parent=None,
        depends_on=(),
        custom=False,
    )
    bucket = DeclaredResource(
        type="gcp:storage/bucket:Bucket",
        name="bucket",
        urn="urn:pulumi:qa::p::anomaly:storage:Storage$gcp:storage/bucket:Bucket::bucket",
        inputs={"name": "b"},
        protect=False,
        parent=component.urn,
        depends_on=(),
    )
    lines = render("qa", [component, bucket]).splitlines()
    assert lines[0] == "Stack qa: 1 resource in 1 component"
    assert lines[2] == "storage (anomaly:storage:Storage), 1 resource"


def test_render_iam_binding(dev_resources):
    report = render("dev", dev_resources)
    assert (
        "role=roles/dataflow.worker  "
        "member=serviceAccount:anomaly-dev-dataflow@anomaly-blueprint-dev.iam.gserviceaccount.com"
    ) in report


def test_render_total(dev_resources):
    custom = sum(1 for r in dev_resources if r.custom)
    assert render("dev", dev_resources).splitlines()[-1].split() == ["total", str(custom)]


def test_cli_unknown_stack(capsys):
    assert main(["--stack", "staging"]) == EXIT_INVALID
    assert "no Pulumi.staging.yaml" in capsys.readouterr().err


def test_cli_invalid_config(capsys):
    assert main(["--stack", "dev", "--set", "streamingMode=fast", "--set", "maxWorkers=0"]) == 2
    error = capsys.readouterr().err
    assert "2 problem(s)" in error
    assert "realtime-anomaly:streamingMode: 'fast' is invalid" in error


def test_cli_bad_override(capsys):
    assert main(["--stack", "dev", "--set", "cmek"]) == EXIT_INVALID
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_cli_prints_plan(capsys):
    assert main(["--stack", "dev", "--set", "iapSsh=true"]) == 0
    report = capsys.readouterr().out
    assert "compute.Firewall  anomaly-dev-allow-iap-ssh" in report
