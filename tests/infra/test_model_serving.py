"""Tests for the Vertex AI Gemma endpoint component."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from infra.components.model_serving import (
    DEFAULT_MODEL,
    ModelServing,
    ModelServingArgs,
    PrivateEndpoint,
)
from pipeline.options import ENDPOINT_PATTERN
from tests.infra.mocks import declare

DEPLOYMENT = "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"


def make_args(**overrides: Any) -> ModelServingArgs:
    values: dict[str, Any] = {
        "project": "demo-project",
        "region": "us-central1",
        "prefix": "anomaly-dev",
        "accept_model_license": True,
    }
    values.update(overrides)
    return ModelServingArgs(**values)


def deploy(args: ModelServingArgs, logger: logging.Logger | None = None):
    return declare(
        lambda: ModelServing("gemma", args),
        lambda component: {
            "endpoint_name": component.endpoint_name,
            "endpoint_id": component.endpoint_id,
        },
        logger=logger,
    )


def test_deploys_gemma_on_l4():
    result = deploy(make_args(min_replicas=1, max_replicas=3))
    inputs = result.one(DEPLOYMENT).inputs

    assert inputs["publisherModelName"] == DEFAULT_MODEL
    assert inputs["location"] == "us-central1"
    assert inputs["project"] == "demo-project"
    assert inputs["modelConfig"]["acceptEula"] is True
    resources = inputs["deployConfig"]["dedicatedResources"]
    assert resources["machineSpec"] == {
        "machineType": "g2-standard-12",
        "acceleratorType": "NVIDIA_L4",
        "acceleratorCount": 1,
    }
    assert resources["minReplicaCount"] == 1
    assert resources["maxReplicaCount"] == 3


def test_endpoint_name_matches_pipeline_format():
    result = deploy(make_args())
    endpoint_name = result.outputs["endpoint_name"]

    assert re.match(ENDPOINT_PATTERN, endpoint_name)
    assert endpoint_name.startswith("projects/demo-project/locations/us-central1/endpoints/")
    assert endpoint_name.endswith("/" + result.outputs["endpoint_id"])


def test_public_endpoint_by_default():
    inputs = deploy(make_args()).one(DEPLOYMENT).inputs

    assert "privateServiceConnectConfig" not in inputs["endpointConfig"]
    assert inputs["endpointConfig"]["endpointDisplayName"] == "anomaly-dev-gemma-triage"


def test_private_endpoint_uses_psc():
    network = "projects/demo-project/global/networks/anomaly-dev-vpc"
    private = PrivateEndpoint(allowed_projects=["demo-project"], network=network)
    inputs = deploy(make_args(private_endpoint=private)).one(DEPLOYMENT).inputs
    psc = inputs["endpointConfig"]["privateServiceConnectConfig"]

    assert psc["enablePrivateServiceConnect"] is True
    assert psc["projectAllowlists"] == ["demo-project"]
    assert psc["pscAutomationConfigs"] == {"projectId": "demo-project", "network": network}


def test_private_endpoint_without_network():
    private = PrivateEndpoint(allowed_projects=["demo-project"])
    inputs = deploy(make_args(private_endpoint=private)).one(DEPLOYMENT).inputs
    psc = inputs["endpointConfig"]["privateServiceConnectConfig"]

    assert "pscAutomationConfigs" not in psc


@pytest.mark.parametrize(("protect", "policy"), [(True, "PREVENT"), (False, "DELETE")])
def test_protect_sets_both_guards(protect, policy):
    deployment = deploy(make_args(protect=protect)).one(DEPLOYMENT)

    assert deployment.protect is protect
    assert deployment.inputs["deletionPolicy"] == policy


def test_cmek_key_logs_warning(caplog):
    logger = logging.getLogger("test_model_serving")
    key = "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"

    with caplog.at_level(logging.WARNING, logger="test_model_serving"):
        deploy(make_args(kms_key_name=key), logger=logger)

    assert any("cannot use the stack's CMEK key" in record.message for record in caplog.records)


def test_no_warning_without_cmek(caplog):
    logger = logging.getLogger("test_model_serving")

    with caplog.at_level(logging.WARNING, logger="test_model_serving"):
        deploy(make_args(), logger=logger)

    assert not any("CMEK" in record.message for record in caplog.records)


@pytest.mark.parametrize(
    ("machine_type", "count"),
    [("g2-standard-4", 1), ("g2-standard-24", 2), ("g2-standard-48", 4), ("g2-standard-96", 8)],
)
def test_g2_gpu_counts_accepted(machine_type, count):
    args = make_args(machine_type=machine_type, accelerator_count=count)

    assert args.accelerator_count == count


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"accept_model_license": False}, "accept_model_license is False"),
        ({"model": "gemma-3-1b-it"}, "model 'gemma-3-1b-it' is not a Model Garden name"),
        ({"machine_type": "n1-standard-8"}, "machine_type 'n1-standard-8' is not a G2"),
        ({"accelerator_count": 2}, "accelerator_count 2 does not match machine_type"),
        ({"min_replicas": 0}, "min_replicas must be >= 1, got 0"),
        ({"min_replicas": 3, "max_replicas": 2}, "max_replicas 2 is below min_replicas 3"),
        (
            {"private_endpoint": PrivateEndpoint(allowed_projects=[])},
            "private_endpoint.allowed_projects is empty",
        ),
    ],
)
def test_invalid_args_rejected(overrides, message):
    with pytest.raises(ValueError, match="invalid ModelServingArgs") as error:
        make_args(**overrides)
    assert message in str(error.value)


def test_license_error_names_terms():
    with pytest.raises(ValueError, match=r"https://ai\.google\.dev/gemma/terms"):
        make_args(accept_model_license=False)
