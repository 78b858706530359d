"""Enabled Google Cloud APIs and service agents; every other resource depends on this component."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import child_opts, component_type, unique

CORE_SERVICES: tuple[str, ...] = (
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "bigtable.googleapis.com",
    "bigtableadmin.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "dataflow.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
)
"""APIs every stack needs; Cloud Build is here because the deploy guide builds the image with it."""

CMEK_SERVICES: tuple[str, ...] = ("cloudkms.googleapis.com",)
VERTEX_SERVICES: tuple[str, ...] = ("aiplatform.googleapis.com",)
QUOTA_SERVICES: tuple[str, ...] = ("cloudquotas.googleapis.com",)
IAP_SERVICES: tuple[str, ...] = ("iap.googleapis.com",)

SERVICE_IDENTITY_APIS: Mapping[str, str] = {
    "pubsub": "pubsub.googleapis.com",
    "bigtable": "bigtableadmin.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "aiplatform": "aiplatform.googleapis.com",
}
"""Service agents that ``gcp.projects.ServiceIdentity`` (generateServiceIdentity) creates
and returns. Creating the identity makes sure the agent exists before a grant names it."""

PROJECT_NUMBER_AGENTS: Mapping[str, str] = {
    "dataflow": "service-{number}@dataflow-service-producer-prod.iam.gserviceaccount.com",
    "compute": "service-{number}@compute-system.iam.gserviceaccount.com",
}
"""Service agents without ServiceIdentity support, in the formats of Google's service agent
list; enabling the API creates them."""

INVOKE_AGENTS = ("storage", "bigquery")
"""Service agents read with a data source: ``gcp.storage.get_project_service_account`` and
``gcp.bigquery.get_default_service_account`` (which also creates the BigQuery agent)."""

SERVICE_AGENTS = (*SERVICE_IDENTITY_APIS, *PROJECT_NUMBER_AGENTS, *INVOKE_AGENTS)


def services_for(*, cmek: bool, vertex: bool, gpu_quota: bool, iap_ssh: bool) -> tuple[str, ...]:
    """List the APIs a stack with these features needs, sorted and without duplicates."""
    services = list(CORE_SERVICES)
    if cmek:
        services.extend(CMEK_SERVICES)
    if vertex:
        services.extend(VERTEX_SERVICES)
    if gpu_quota:
        services.extend(QUOTA_SERVICES)
    if iap_ssh:
        services.extend(IAP_SERVICES)
    return tuple(sorted(unique(services)))


@dataclass(frozen=True)
class ProjectServicesArgs:
    """Inputs of ``ProjectServices``."""

    project: str
    """Project ID whose APIs are enabled."""

    services: Sequence[str]
    """API names such as ``pubsub.googleapis.com``; see ``services_for``."""

    service_agents: Sequence[str] = field(default_factory=tuple)
    """Service agents whose emails other components need, from ``SERVICE_AGENTS``."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.service_agents) - set(SERVICE_AGENTS))
        if unknown:
            msg = f"unknown service agents {unknown}; expected names from {list(SERVICE_AGENTS)}"
            raise ValueError(msg)


class ProjectServices(pulumi.ComponentResource):
    """Enabled APIs; destroying the stack leaves them on, because other workloads may use them."""

    services: dict[str, gcp.projects.Service]
    agents: dict[str, pulumi.Output[str]]
    """Service agent emails by name (``pubsub``, ``storage``, ...)."""

    def __init__(
        self, name: str, args: ProjectServicesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("project", "ProjectServices"), name, None, opts)

        self.services = {}
        for service in unique(args.services):
            short_name = service.split(".", 1)[0]
            self.services[service] = gcp.projects.Service(
                f"{name}-{short_name}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=child_opts(self, opts),
            )

        self.agents = {
            agent: self._agent_email(name, args.project, agent, opts)
            for agent in unique(args.service_agents)
        }
        self.register_outputs({"services": sorted(self.services), "agents": self.agents})

    def _agent_email(
        self, name: str, project: str, agent: str, opts: pulumi.ResourceOptions | None
    ) -> pulumi.Output[str]:
        enabled = list(self.services.values())
        invoke_opts = pulumi.InvokeOutputOptions(parent=self, depends_on=enabled)

        if agent in SERVICE_IDENTITY_APIS:
            identity = gcp.projects.ServiceIdentity(
                f"{name}-agent-{agent}",
                project=project,
                service=SERVICE_IDENTITY_APIS[agent],
                opts=child_opts(self, opts, depends_on=enabled),
            )
            return identity.email
        if agent == "storage":
            storage = gcp.storage.get_project_service_account_output(
                project=project, opts=invoke_opts
            )
            return storage.email_address
        if agent == "bigquery":
            bigquery = gcp.bigquery.get_default_service_account_output(
                project=project, opts=invoke_opts
            )
            return bigquery.email

        details = gcp.organizations.get_project_output(project_id=project, opts=invoke_opts)
        template = PROJECT_NUMBER_AGENTS[agent]
        return details.number.apply(partial(_format_agent, template))


def _format_agent(template: str, project_number: str) -> str:
    return template.format(number=project_number)
