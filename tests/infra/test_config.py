"""Config validation: defaults, invalid values with their messages, and Pulumi.yaml agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.config import set_all_config

from infra.config import (
    KEYS,
    PROJECT_NAME,
    ConfigError,
    full_key,
    load_config,
    parse_config,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE = {"gcp:project": "my-project-1", "gcp:region": "europe-west4"}
PROD_OK = {
    **BASE,
    full_key("environment"): "prod",
    full_key("cmek"): True,
    full_key("alertEmails"): ["oncall@example.com"],
    full_key("containerImage"): "europe-west4-docker.pkg.dev/my-project-1/images/pipeline:v1.0.0",
}


def config_with(**values: Any) -> dict[str, Any]:
    return {**BASE, **{full_key(key): value for key, value in values.items()}}


def problems_of(raw: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_defaults_give_dev_stack():
    config = parse_config(BASE)
    assert config.environment == "dev"
    assert config.zone == "europe-west4-a"
    assert config.cmek is False
    assert config.triage_mode == "none"
    assert config.name_prefix == "anomaly-dev"
    assert config.labels == {"environment": "dev", "app": "realtime-anomaly"}


def test_engine_strings_are_coerced():
    config = parse_config(
        config_with(
            cmek="true",
            maxWorkers="7",
            alertEmails='["a@example.com", "b@example.org"]',
            triageMaxPerSecond="2.5",
        )
    )
    assert config.cmek is True
    assert config.dataflow.max_workers == 7
    assert config.alerts.emails == ("a@example.com", "b@example.org")
    assert config.triage_max_per_second == 2.5


def test_labels_merge_extras():
    config = parse_config(config_with(labels=["team=data", "cost-center=42"]))
    assert config.labels == {
        "team": "data",
        "cost-center": "42",
        "environment": "dev",
        "app": "realtime-anomaly",
    }


def test_prod_config_valid():
    config = parse_config(PROD_OK)
    assert config.is_prod
    assert config.cmek


INVALID_CASES = [
    # (id, raw config, key named in the message, fragment of the expectation)
    ("project-missing", {"gcp:region": "us-central1"}, "gcp:project", "a project id"),
    ("project-uppercase", {**BASE, "gcp:project": "My_Project"}, "gcp:project", "'My_Project'"),
    (
        "region-unknown",
        {**BASE, "gcp:region": "mars-north1"},
        "gcp:region",
        "a Google Cloud region",
    ),
    ("environment", config_with(environment="staging"), full_key("environment"), "dev, prod"),
    ("prefix-too-long", config_with(prefix="averyverylongprefix"), full_key("prefix"), "2-12"),
    ("zone-other-region", config_with(zone="us-central1-a"), full_key("zone"), "europe-west4-a"),
    ("cidr-public", config_with(subnetCidr="8.8.8.0/24"), full_key("subnetCidr"), "private"),
    ("cidr-ipv6", config_with(subnetCidr="fd00::/64"), full_key("subnetCidr"), "IPv4"),
    ("cidr-garbage", config_with(subnetCidr="10.0.0.0/33"), full_key("subnetCidr"), "private"),
    ("cidr-host-bits", config_with(subnetCidr="10.0.0.1/24"), full_key("subnetCidr"), "/29"),
    ("cmek-not-bool", config_with(cmek="yes"), full_key("cmek"), "true or false"),
    (
        "prod-without-cmek",
        {**PROD_OK, full_key("cmek"): False},
        full_key("cmek"),
        "false is invalid; expected true when environment is prod",
    ),
    (
        "prod-image-default",
        {**PROD_OK, full_key("containerImage"): ""},
        full_key("containerImage"),
        "immutable tag or digest",
    ),
    (
        "prod-image-latest",
        {**PROD_OK, full_key("containerImage"): "europe-west4-docker.pkg.dev/p/r/pipeline:latest"},
        full_key("containerImage"),
        "immutable tag or digest",
    ),
    ("workers-zero", config_with(initialWorkers=0), full_key("initialWorkers"), "from 1 to 1000"),
    (
        "max-below-initial",
        config_with(initialWorkers=5, maxWorkers=2),
        full_key("maxWorkers"),
        "at least initialWorkers (5)",
    ),
    ("workers-not-int", config_with(maxWorkers="many"), full_key("maxWorkers"), "an integer"),
    (
        "streaming-mode",
        config_with(streamingMode="exactly-once"),
        full_key("streamingMode"),
        "exactly_once, at_least_once",
    ),
    (
        "image-no-tag",
        config_with(containerImage="pipeline"),
        full_key("containerImage"),
        "HOST/PATH:TAG",
    ),
    ("triage-mode", config_with(triageMode="gpu"), full_key("triageMode"), "vertex, worker, none"),
    (
        "vertex-license",
        config_with(triageMode="vertex", quotaContactEmail="q@example.com"),
        full_key("acceptGemmaLicense"),
        "true when triageMode is vertex",
    ),
    (
        "gemma-model",
        config_with(gemmaModelId="gemma-3-1b"),
        full_key("gemmaModelId"),
        "publishers/PUBLISHER/models/MODEL@VERSION",
    ),
    (
        "gemma-machine",
        config_with(gemmaMachineType="n2-standard-8"),
        full_key("gemmaMachineType"),
        "a G2 machine type",
    ),
    (
        "gemma-gpus",
        config_with(gemmaMachineType="g2-standard-24", gemmaAcceleratorCount=1),
        full_key("gemmaAcceleratorCount"),
        "2, the number of L4 GPUs of g2-standard-24",
    ),
    (
        "gemma-replicas",
        config_with(gemmaMinReplicas=3, gemmaMaxReplicas=1),
        full_key("gemmaMaxReplicas"),
        "at least gemmaMinReplicas (3)",
    ),
    (
        "worker-machine",
        config_with(triageMode="worker", quotaContactEmail="q@example.com"),
        full_key("workerMachineType"),
        "a G2 machine type (L4 GPUs) when triageMode is worker",
    ),
    (
        "alert-email",
        config_with(alertEmails=["not-an-email"]),
        full_key("alertEmails"),
        "an email address",
    ),
    (
        "alert-email-twice",
        config_with(alertEmails=["a@example.com", "a@example.com"]),
        full_key("alertEmails"),
        "each address listed once",
    ),
    (
        "prod-no-alert-email",
        {**PROD_OK, full_key("alertEmails"): []},
        full_key("alertEmails"),
        "at least one email address",
    ),
    (
        "alert-emails-not-list",
        config_with(alertEmails="a@example.com"),
        full_key("alertEmails"),
        "a list of strings",
    ),
    (
        "anomaly-rate",
        config_with(alertAnomalyRate="1.5"),
        full_key("alertAnomalyRate"),
        "greater than 0.0 up to 1.0",
    ),
    (
        "lag-zero",
        config_with(alertSystemLagSeconds=0),
        full_key("alertSystemLagSeconds"),
        "an integer >= 1",
    ),
    (
        "quota-email-missing",
        config_with(triageMode="worker", workerMachineType="g2-standard-4"),
        full_key("quotaContactEmail"),
        "GPU quota request needs a contact",
    ),
    ("bigtable-nodes", config_with(bigtableNodes=0), full_key("bigtableNodes"), "from 1 to 1000"),
    (
        "bigtable-storage",
        config_with(bigtableStorageType="ssd"),
        full_key("bigtableStorageType"),
        "SSD, HDD",
    ),
    ("label-format", config_with(labels=["team"]), full_key("labels"), "key=value"),
    (
        "label-uppercase",
        config_with(labels=["Team=data"]),
        full_key("labels"),
        "label key 'Team' is invalid",
    ),
    (
        "label-reserved",
        config_with(labels=["environment=qa"]),
        full_key("labels"),
        "a key other than environment or app",
    ),
    (
        "triage-rate",
        config_with(triageMaxPerSecond="0"),
        full_key("triageMaxPerSecond"),
        "greater than 0.0",
    ),
    ("unknown-key", config_with(maxWorker=3), full_key("maxWorker"), "unknown key"),
]


@pytest.mark.parametrize(
    ("raw", "key", "expected"),
    [pytest.param(raw, key, expected, id=case_id) for case_id, raw, key, expected in INVALID_CASES],
)
def test_invalid_config_message(raw, key, expected):
    problems = problems_of(raw)
    matching = [problem for problem in problems if problem.startswith(f"{key}:")]
    assert matching, f"no problem names {key}: {problems}"
    assert any(expected in problem for problem in matching), matching


def test_missing_project_message():
    (problem,) = problems_of({"gcp:region": "us-central1"})
    assert problem.startswith("gcp:project: missing; expected a project id")
    assert "pulumi config set gcp:project PROJECT_ID" in problem


def test_invalid_message_shows_value():
    (problem,) = problems_of(config_with(maxWorkers=1234))
    assert (
        problem == f"{full_key('maxWorkers')}: 1234 is invalid; expected an integer from 1 to 1000"
    )


def test_all_problems_reported_at_once():
    raw = {
        "gcp:project": "x",
        "gcp:region": "us-central1",
        full_key("environment"): "prod",
        full_key("maxWorkers"): 0,
        full_key("subnetCidr"): "1.2.3.0/24",
        full_key("labels"): ["BAD=x"],
    }
    problems = problems_of(raw)
    keys = {problem.split(": ", 1)[0] for problem in problems}
    assert keys == {
        "gcp:project",
        full_key("cmek"),
        full_key("maxWorkers"),
        full_key("subnetCidr"),
        full_key("labels"),
        full_key("alertEmails"),
        full_key("containerImage"),
    }


def test_config_error_lists_problems():
    error = ConfigError(["a: bad", "b: worse"])
    assert "2 problem(s)" in str(error)
    assert "  - a: bad\n  - b: worse" in str(error)
    assert isinstance(error, pulumi.RunError)


def project_file() -> dict[str, Any]:
    project: dict[str, Any] = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    return project


def test_pulumi_yaml_declares_every_key():
    declared = project_file()["config"]
    assert set(declared) == {spec.key for spec in KEYS}


@pytest.mark.parametrize("spec", KEYS, ids=[spec.key for spec in KEYS])
def test_pulumi_yaml_matches_key(spec):
    declared = project_file()["config"][spec.key]
    assert declared["type"] == spec.type
    assert declared["default"] == spec.default
    assert declared["description"] == spec.description
    if spec.type == "array":
        assert declared["items"] == {"type": "string"}


def test_pulumi_yaml_project_settings():
    project = project_file()
    assert project["name"] == PROJECT_NAME
    assert project["main"] == "infra/"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }
    assert set(project["template"]["config"]) == {
        "gcp:project",
        "gcp:region",
        f"{PROJECT_NAME}:environment",
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_file_keys_known(stack):
    values = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    known = {full_key(spec.key) for spec in KEYS} | {"gcp:project", "gcp:region"}
    assert set(values) <= known


def test_load_config_reads_pulumi_config():
    set_all_config(
        {
            "gcp:project": "my-project-1",
            "gcp:region": "us-east1",
            full_key("maxWorkers"): "4",
            full_key("alertEmails"): '["ops@example.com"]',
        }
    )
    config = load_config()
    assert config.region == "us-east1"
    assert config.zone == "us-east1-b"
    assert config.dataflow.max_workers == 4
    assert config.alerts.emails == ("ops@example.com",)


def test_load_config_rejects_unknown_key():
    set_all_config(
        {"gcp:project": "my-project-1", "gcp:region": "us-east1", full_key("cmk"): "true"}
    )
    with pytest.raises(ConfigError, match="cmk: unknown key"):
        load_config()
