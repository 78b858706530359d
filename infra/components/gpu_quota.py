"""Cloud Quotas preferences for the NVIDIA L4 GPUs that the stack's triage mode needs.

A quota preference sets a quota to an absolute value and does not add to the
current value. The component therefore requests exactly the number of GPUs the
stack can use at its maximum scale. If the project already has a higher limit,
pass ``preferred_gpus`` with that limit (or leave this component out), because a
lower value is a decrease request. The Cloud Quotas API rejects a decrease
below current usage or by more than 10 percent unless ``ignore_safety_checks``
is set, and this component never sets it.

Destroy: the Terraform provider behind ``gcp.cloudquota.SQuotaPreference``
has no delete call for quota preferences. ``pulumi destroy`` only removes the
preference from the Pulumi state. The preference, and any quota that Google
granted, stays on the project until someone changes it in the console or with
``gcloud beta quotas preferences update``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import child_opts, component_type

TriageMode = Literal["vertex", "worker", "none"]

TRIAGE_MODES: tuple[TriageMode, ...] = ("vertex", "worker", "none")

VERTEX_SERVICE = "aiplatform.googleapis.com"
VERTEX_L4_QUOTA_ID = "CustomModelServingL4GPUsPerProjectPerRegion"
"""Vertex AI online prediction L4 GPUs per region. gcloud's ``ai endpoints
deploy-model`` maps ``NVIDIA_L4`` to this id."""

COMPUTE_SERVICE = "compute.googleapis.com"
COMPUTE_L4_QUOTA_ID = "NVIDIA-L4-GPUS-per-project-region"
"""Compute Engine L4 GPUs per region (the ``NVIDIA_L4_GPUS`` region metric),
which Dataflow GPU workers consume."""

COMPUTE_ALL_GPUS_QUOTA_ID = "GPUS-ALL-REGIONS-per-project"
"""Compute Engine GPUs of any model across all regions (``GPUS_ALL_REGIONS``).
New projects start at 0, so Dataflow GPU workers need it as well."""

DEFAULT_JUSTIFICATION = (
    "Real-time anomaly detection pipeline: a Gemma model on NVIDIA L4 GPUs triages "
    "flagged events. The value is the maximum the deployment can scale to."
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PREFERENCE_ID = re.compile(r"^[a-z0-9][-a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class GpuQuotaArgs:
    """Inputs of ``GpuQuota``.

    The GPU count is ``vertex_max_replicas * vertex_gpus_per_replica`` for
    triage mode ``vertex`` and ``dataflow_max_workers * dataflow_gpus_per_worker``
    for ``worker``. Mode ``none`` declares nothing.
    """

    project: str
    """Project ID that the preferences apply to."""

    region: str
    """Region of the endpoint or of the Dataflow workers, such as ``us-central1``."""

    triage_mode: TriageMode
    """``vertex`` (Vertex AI endpoint), ``worker`` (GPU Dataflow workers) or ``none``."""

    contact_email: str
    """Address Google writes to about the request. The account must have quota
    update permission on the project."""

    prefix: str
    """Deterministic prefix of the preference ids, such as ``anomaly-dev``."""

    vertex_max_replicas: int = 1
    """Maximum replica count of the Vertex AI deployment."""

    vertex_gpus_per_replica: int = 1
    """L4 GPUs per Vertex AI replica (1 for g2-standard-4 to g2-standard-32)."""

    dataflow_max_workers: int = 1
    """Maximum number of Dataflow workers."""

    dataflow_gpus_per_worker: int = 1
    """L4 GPUs attached to each Dataflow worker."""

    justification: str = DEFAULT_JUSTIFICATION
    """Reason shown to the Google reviewer of the request."""

    preferred_gpus: int | None = None
    """Explicit value that replaces the computed count, for a project whose
    current limit is already higher. ``None`` uses the computed count."""

    def __post_init__(self) -> None:
        errors: list[str] = []
        if self.triage_mode not in TRIAGE_MODES:
            errors.append(
                f"triage_mode {self.triage_mode!r} is invalid; expected one of {TRIAGE_MODES}"
            )
        if not _EMAIL.match(self.contact_email):
            errors.append(
                f"contact_email {self.contact_email!r} is not an email address; "
                "give an address that can answer Google's quota reviewers"
            )
        for field_name in (
            "vertex_max_replicas",
            "vertex_gpus_per_replica",
            "dataflow_max_workers",
            "dataflow_gpus_per_worker",
        ):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                errors.append(f"{field_name} must be an integer >= 1, got {value!r}")
        if self.preferred_gpus is not None and (
            isinstance(self.preferred_gpus, bool)
            or not isinstance(self.preferred_gpus, int)
            or self.preferred_gpus < 1
        ):
            errors.append(
                f"preferred_gpus must be an integer >= 1 or None, got {self.preferred_gpus!r}"
            )
        if not self.justification.strip():
            errors.append("justification is empty; say why the GPUs are needed")
        if errors:
            raise ValueError("invalid GpuQuotaArgs: " + "; ".join(errors))

    def required_gpus(self) -> int:
        """Return the number of L4 GPUs the triage mode can use at maximum scale."""
        if self.triage_mode == "vertex":
            return self.vertex_max_replicas * self.vertex_gpus_per_replica
        if self.triage_mode == "worker":
            return self.dataflow_max_workers * self.dataflow_gpus_per_worker
        return 0

    def preferred_value(self) -> int:
        """Return the value to request: ``preferred_gpus`` when set, else ``required_gpus()``."""
        if self.preferred_gpus is not None:
            return self.preferred_gpus
        return self.required_gpus()


@dataclass(frozen=True)
class QuotaRequest:
    """One quota preference the component declares."""

    service: str
    quota_id: str
    dimensions: dict[str, str]
    preference_id: str
    value: int


def quota_requests(args: GpuQuotaArgs) -> list[QuotaRequest]:
    """Build the quota preferences for ``args.triage_mode`` (none for mode ``none``)."""
    value = args.preferred_value()
    if args.triage_mode == "vertex":
        return [
            QuotaRequest(
                service=VERTEX_SERVICE,
                quota_id=VERTEX_L4_QUOTA_ID,
                dimensions={"region": args.region},
                preference_id=_preference_id(args.prefix, "vertex-l4", args.region),
                value=value,
            )
        ]
    if args.triage_mode == "worker":
        return [
            QuotaRequest(
                service=COMPUTE_SERVICE,
                quota_id=COMPUTE_L4_QUOTA_ID,
                dimensions={"region": args.region},
                preference_id=_preference_id(args.prefix, "compute-l4", args.region),
                value=value,
            ),
            # NOTE: this sets the project-wide GPU limit to the pipeline's own
            # need. A project that runs other GPU VMs must pass preferred_gpus
            # with the total, or the request becomes a decrease.
            QuotaRequest(
                service=COMPUTE_SERVICE,
                quota_id=COMPUTE_ALL_GPUS_QUOTA_ID,
                dimensions={},
                preference_id=_preference_id(args.prefix, "compute-gpus-all-regions"),
                value=value,
            ),
        ]
    return []


def _preference_id(*parts: str) -> str:
    preference_id = "-".join(part for part in parts if part).lower()
    if not _PREFERENCE_ID.match(preference_id):
        msg = (
            f"quota preference id {preference_id!r} is invalid; expected at most 63 "
            "lowercase letters, digits, '-' or '_'. Shorten the prefix."
        )
        raise ValueError(msg)
    return preference_id


class GpuQuota(pulumi.ComponentResource):
    """Quota preferences for the L4 GPUs of the Vertex AI endpoint or the Dataflow workers."""

    preferences: list[gcp.cloudquota.SQuotaPreference]
    """Declared preferences, in the order of ``quota_requests``."""

    requested_gpus: int
    """GPU count that each preference requests (0 for triage mode ``none``)."""

    def __init__(
        self, name: str, args: GpuQuotaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("quota", "GpuQuota"), name, None, opts)

        requests = quota_requests(args)
        self.requested_gpus = requests[0].value if requests else 0
        self.preferences = [
            gcp.cloudquota.SQuotaPreference(
                f"{name}-{request.preference_id}",
                parent=f"projects/{args.project}",
                name=request.preference_id,
                service=request.service,
                quota_id=request.quota_id,
                dimensions=request.dimensions or None,
                quota_config=gcp.cloudquota.SQuotaPreferenceQuotaConfigArgs(
                    preferred_value=str(request.value),
                ),
                justification=args.justification,
                contact_email=args.contact_email,
                opts=child_opts(self, opts),
            )
            for request in requests
        ]

        self.register_outputs(
            {
                "requested_gpus": self.requested_gpus,
                "preference_ids": [request.preference_id for request in requests],
            }
        )
