"""Tests that the Flex Template Dockerfile and cloudbuild.yaml keep their essentials."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CLOUDBUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def instructions(name):
    return [line for line in DOCKERFILE.splitlines() if line.startswith(f"{name} ")]


def test_final_image_is_beam_sdk_of_pinned_version():
    froms = instructions("FROM")
    assert froms[-1] == "FROM apache/beam_python3.11_sdk:${BEAM_VERSION}"
    assert "ARG BEAM_VERSION=2.77.0" in DOCKERFILE
    requirements = (ROOT / "pipeline" / "requirements.txt").read_text()
    assert "apache-beam[gcp]==2.77.0" in requirements


def test_launcher_binary_is_copied():
    assert "python311-template-launcher-base" in DOCKERFILE
    assert re.search(
        r"COPY --from=template_launcher /opt/google/dataflow/python_template_launcher", DOCKERFILE
    )


def test_entrypoint_is_beam_boot():
    assert instructions("ENTRYPOINT") == ['ENTRYPOINT ["/opt/apache/beam/boot"]']


@pytest.mark.parametrize(
    "line",
    [
        "ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/pipeline/main.py",
        "ENV PYTHONPATH=/template",
    ],
)
def test_environment(line):
    assert line in instructions("ENV")


def test_py_file_exists_in_repository():
    assert (ROOT / "pipeline" / "main.py").is_file()


def test_requirements_come_from_pipeline_requirements():
    assert "COPY pipeline/requirements.txt /template/requirements.txt" in DOCKERFILE
    assert any(
        "pip install --no-cache-dir -r /template/requirements.txt" in line
        for line in instructions("RUN")
    )


def test_cloudbuild_builds_and_pushes_same_image():
    image = "${_REGION}-docker.pkg.dev/${PROJECT_ID}/${_REPOSITORY}/${_IMAGE}:${_TAG}"
    build = CLOUDBUILD["steps"][0]
    assert build["name"] == "gcr.io/cloud-builders/docker"
    assert f"--tag={image}" in build["args"]
    assert "--file=Dockerfile" in build["args"]
    assert CLOUDBUILD["images"] == [image]
    assert set(CLOUDBUILD["substitutions"]) == {"_REGION", "_REPOSITORY", "_IMAGE", "_TAG"}
