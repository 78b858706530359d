"""Vertex AI endpoint with a Model Garden Gemma model on NVIDIA L4 GPUs (triage mode ``vertex``).

``gcp.vertex.AiEndpointWithModelGardenDeployment`` creates the endpoint and
deploys the model in one call to the Vertex AI ``deploy`` API. In pulumi_gcp
10.2.0 that resource has no labels and no encryption settings, because the
``deploy`` request carries neither. The component therefore cannot apply the
stack's labels or CMEK key to the endpoint and logs a warning when a key is given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
from pulumi_gcp.vertex import (
    AiEndpointWithModelGardenDeploymentDeployConfigArgs as DeployConfigArgs,
)
from pulumi_gcp.vertex import (
    AiEndpointWithModelGardenDeploymentDeployConfigDedicatedResourcesArgs as DedicatedResourcesArgs,
)
from pulumi_gcp.vertex import (
    AiEndpointWithModelGardenDeploymentDeployConfigDedicatedResourcesMachineSpecArgs as MachineSpecArgs,  # noqa: E501 (class name fixed by pulumi_gcp)
)
from pulumi_gcp.vertex import (
    AiEndpointWithModelGardenDeploymentEndpointConfigArgs as EndpointConfigArgs,
)
from pulumi_gcp.vertex import (
    AiEndpointWithModelGardenDeploymentEndpointConfigPrivateServiceConnectConfigArgs as PscConfigArgs,  # noqa: E501 (class name fixed by pulumi_gcp)
)
from pulumi_gcp.vertex import (
    AiEndpointWithModelGardenDeploymentEndpointConfigPrivateServiceConnectConfigPscAutomationConfigsArgs as PscAutomationArgs,  # noqa: E501 (class name fixed by pulumi_gcp)
)
from pulumi_gcp.vertex import (
    AiEndpointWithModelGardenDeploymentModelConfigArgs as ModelConfigArgs,
)

from infra.components.conventions import child_opts, component_type, resource_name

DEFAULT_MODEL = "publishers/google/models/gemma3@gemma-3-1b-it"
"""Gemma 3 1B instruction-tuned, the Model Garden name used in Google's deploy examples."""

GEMMA_TERMS_URL = "https://ai.google.dev/gemma/terms"

L4_ACCELERATOR = "NVIDIA_L4"

G2_GPUS_PER_MACHINE: Mapping[str, int] = {
    "g2-standard-4": 1,
    "g2-standard-8": 1,
    "g2-standard-12": 1,
    "g2-standard-16": 1,
    "g2-standard-32": 1,
    "g2-standard-24": 2,
    "g2-standard-48": 4,
    "g2-standard-96": 8,
}
"""L4 GPUs that come with each G2 machine type (Compute Engine G2 machine series)."""

_PUBLISHER_MODEL = re.compile(r"^publishers/[a-z0-9-]+/models/[a-z0-9._-]+@[a-z0-9._-]+$")


@dataclass(frozen=True)
class PrivateEndpoint:
    """Private Service Connect settings. With them the endpoint has no public access."""

    allowed_projects: Sequence[str]
    """Projects allowed to create PSC forwarding rules to the endpoint, usually the stack's own."""

    network: pulumi.Input[str] | None = None
    """VPC network (``projects/P/global/networks/N``) in which Vertex AI creates the
    PSC forwarding rule itself. ``None`` leaves creating the rule to the operator."""


@dataclass(frozen=True)
class ModelServingArgs:
    """Inputs of ``ModelServing``."""

    project: str
    """Project ID of the endpoint."""

    region: str
    """Region of the endpoint, which must offer L4 GPUs."""

    prefix: str
    """Deterministic prefix of the display names, such as ``anomaly-dev``."""

    accept_model_license: bool
    """Acceptance of the Gemma Terms of Use (https://ai.google.dev/gemma/terms).
    Model Garden rejects a Gemma deployment without it, so ``False`` raises."""

    model: str = DEFAULT_MODEL
    """Model Garden name, ``publishers/{publisher}/models/{model}@{version}``."""

    machine_type: str = "g2-standard-12"
    """G2 machine type of each replica, which fixes the number of L4 GPUs."""

    accelerator_count: int = 1
    """L4 GPUs per replica, equal to the GPUs of the G2 machine type."""

    min_replicas: int = 1
    """Replicas that always run (Vertex AI requires at least 1)."""

    max_replicas: int = 1
    """Replicas the endpoint may scale out to. The GPU quota must cover
    ``max_replicas * accelerator_count``."""

    private_endpoint: PrivateEndpoint | None = None
    """Private Service Connect settings, or ``None`` for the shared public API endpoint."""

    labels: Mapping[str, str] = field(default_factory=dict)
    """Stack labels. They are not applied, because the Model Garden deploy API has
    no labels. The field exists so that every component takes the same inputs."""

    kms_key_name: pulumi.Input[str] | None = None
    """Stack CMEK key. The Model Garden deploy API has no encryption setting, so
    a key only produces a warning (see the module docstring)."""

    protect: bool = False
    """Pulumi ``protect`` and ``deletion_policy = "PREVENT"`` on the deployment."""

    def __post_init__(self) -> None:
        errors: list[str] = []
        if not self.accept_model_license:
            errors.append(
                f"accept_model_license is False; read the Gemma Terms of Use at {GEMMA_TERMS_URL} "
                "and set it to True to deploy the model"
            )
        if not _PUBLISHER_MODEL.match(self.model):
            errors.append(
                f"model {self.model!r} is not a Model Garden name; expected "
                f"publishers/PUBLISHER/models/MODEL@VERSION such as {DEFAULT_MODEL!r}"
            )
        expected_gpus = G2_GPUS_PER_MACHINE.get(self.machine_type)
        if expected_gpus is None:
            errors.append(
                f"machine_type {self.machine_type!r} is not a G2 machine type; L4 GPUs need "
                f"one of {sorted(G2_GPUS_PER_MACHINE)}"
            )
        elif self.accelerator_count != expected_gpus:
            errors.append(
                f"accelerator_count {self.accelerator_count} does not match machine_type "
                f"{self.machine_type!r}, which has {expected_gpus} L4 GPU(s)"
            )
        if self.min_replicas < 1:
            errors.append(f"min_replicas must be >= 1, got {self.min_replicas}")
        if self.max_replicas < self.min_replicas:
            errors.append(
                f"max_replicas {self.max_replicas} is below min_replicas {self.min_replicas}; "
                "raise max_replicas or lower min_replicas"
            )
        if self.private_endpoint is not None and not self.private_endpoint.allowed_projects:
            errors.append(
                "private_endpoint.allowed_projects is empty; list at least the project "
                "whose Dataflow workers call the endpoint"
            )
        if errors:
            raise ValueError("invalid ModelServingArgs: " + "; ".join(errors))


def endpoint_resource_name(
    project: pulumi.Input[str], location: pulumi.Input[str], endpoint_id: pulumi.Input[str]
) -> pulumi.Output[str]:
    """Build ``projects/P/locations/R/endpoints/ID``, the pipeline's ``vertex_endpoint`` format."""
    return pulumi.Output.concat(
        "projects/", project, "/locations/", location, "/endpoints/", endpoint_id
    )


class ModelServing(pulumi.ComponentResource):
    """Vertex AI endpoint with a Gemma model from Model Garden deployed on L4 GPUs."""

    deployment: gcp.vertex.AiEndpointWithModelGardenDeployment

    endpoint_id: pulumi.Output[str]
    """Numeric endpoint ID, as in the monitoring label ``endpoint_id``."""

    endpoint_name: pulumi.Output[str]
    """``projects/P/locations/R/endpoints/ID``: pass it as the pipeline's ``vertex_endpoint``."""

    deployed_model_id: pulumi.Output[str]
    """ID of the deployed model on the endpoint."""

    def __init__(
        self, name: str, args: ModelServingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("serving", "ModelServing"), name, None, opts)

        if args.kms_key_name is not None:
            pulumi.log.warn(
                "The Gemma endpoint cannot use the stack's CMEK key: the Vertex AI Model Garden "
                "deploy API has no encryption setting, so the endpoint uses a Google-managed key.",
                resource=self,
            )

        display_name = resource_name("vertex_display_name", args.prefix, "gemma-triage")
        self.deployment = gcp.vertex.AiEndpointWithModelGardenDeployment(
            f"{name}-deployment",
            project=args.project,
            location=args.region,
            publisher_model_name=args.model,
            model_config=ModelConfigArgs(
                accept_eula=True,
                model_display_name=display_name,
            ),
            endpoint_config=_endpoint_config(args, display_name),
            deploy_config=DeployConfigArgs(
                dedicated_resources=DedicatedResourcesArgs(
                    machine_spec=MachineSpecArgs(
                        machine_type=args.machine_type,
                        accelerator_type=L4_ACCELERATOR,
                        accelerator_count=args.accelerator_count,
                    ),
                    min_replica_count=args.min_replicas,
                    max_replica_count=args.max_replicas,
                ),
            ),
            deletion_policy="PREVENT" if args.protect else "DELETE",
            opts=child_opts(self, opts, protect=args.protect),
        )

        self.endpoint_id = self.deployment.endpoint
        self.endpoint_name = endpoint_resource_name(
            self.deployment.project, self.deployment.location, self.deployment.endpoint
        )
        self.deployed_model_id = self.deployment.deployed_model_id

        self.register_outputs(
            {
                "endpoint_id": self.endpoint_id,
                "endpoint_name": self.endpoint_name,
                "deployed_model_id": self.deployed_model_id,
            }
        )


def _endpoint_config(args: ModelServingArgs, display_name: str) -> EndpointConfigArgs:
    private = args.private_endpoint
    if private is None:
        return EndpointConfigArgs(
            endpoint_display_name=display_name,
        )

    automation = None
    if private.network is not None:
        automation = PscAutomationArgs(
            project_id=args.project,
            network=private.network,
        )
    return EndpointConfigArgs(
        endpoint_display_name=display_name,
        private_service_connect_config=PscConfigArgs(
            enable_private_service_connect=True,
            project_allowlists=list(private.allowed_projects),
            psc_automation_configs=automation,
        ),
    )
