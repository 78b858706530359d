# Flex Template image of the anomaly pipeline: one image serves the launcher and the
# Dataflow workers. It starts from Beam's Python SDK image, whose entrypoint
# /opt/apache/beam/boot starts the SDK worker, and adds Google's Flex Template launcher
# binary, which Dataflow runs on the launcher VM. The launcher base must be for the same
# Python version as the SDK image. Build with cloudbuild.yaml (see docs/pipeline.md).
ARG BEAM_VERSION=2.77.0
# NOTE: "latest" follows Google's current launcher; pin a dated tag for reproducible builds.
ARG LAUNCHER_IMAGE=gcr.io/dataflow-templates-base/python311-template-launcher-base:latest

FROM ${LAUNCHER_IMAGE} AS template_launcher

FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

COPY --from=template_launcher /opt/google/dataflow/python_template_launcher \
    /opt/google/dataflow/python_template_launcher

# llama-cpp-python has no binary wheel on PyPI, so pip compiles it (CPU build).
# NOTE: GPU workers (triage mode "worker") need a CUDA build, i.e. a CUDA base image and
# CMAKE_ARGS="-DGGML_CUDA=on"; this image runs the embedded model on the CPU.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /template

# Dependencies are installed in the image, so neither the launcher nor the workers
# install packages at start-up; FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE stays unset.
COPY pipeline/requirements.txt /template/requirements.txt
RUN pip install --no-cache-dir -r /template/requirements.txt && pip check

COPY pipeline /template/pipeline

# The pipeline imports itself as the package "pipeline" on the launcher and the workers.
ENV PYTHONPATH=/template
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/pipeline/main.py

ENTRYPOINT ["/opt/apache/beam/boot"]
