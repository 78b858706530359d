"""Flex Template spec in Cloud Storage and the Dataflow streaming job launched from it.

The spec is ``{"image", "sdkInfo", "metadata"}``, where the metadata comes from
``pipeline.template_metadata.template_metadata()``, so the pipeline's option
declarations are the only list of parameters. The spec object's name contains
a hash of its content: a new image gives a new ``container_spec_gcs_path``,
and Pulumi updates the running job in place (a Dataflow update launch) instead
of leaving it on the old image.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import child_opts, component_type, resource_name
from infra.components.model_serving import G2_GPUS_PER_MACHINE

TriageMode = Literal["vertex", "worker", "none"]
StreamingMode = Literal["exactly_once", "at_least_once"]

TRIAGE_MODES: tuple[TriageMode, ...] = ("vertex", "worker", "none")
STREAMING_MODES: tuple[StreamingMode, ...] = ("exactly_once", "at_least_once")

TRIAGE_HANDLER_BY_MODE: Mapping[TriageMode, str] = {
    "vertex": "vertex",
    "worker": "local",
    "none": "none",
}
"""Pipeline ``triage_handler`` for each stack triage mode: ``worker`` runs the
embedded Gemma (``local``) on GPU workers."""

AT_LEAST_ONCE_EXPERIMENT = "streaming_mode_at_least_once"
"""Dataflow service option for at-least-once streaming. The Flex Template job
resource has no ``dataflow_service_options`` field, so it goes in
``additional_experiments``, the form the integration tests of Google's Dataflow templates use."""

MAX_WORKERS_LIMIT = 1000
"""Upper bound Dataflow accepts for ``max_workers``."""

_SUBNETWORK = re.compile(
    r"^(https://www\.googleapis\.com/compute/v1/projects/[^/]+/)?regions/[^/]+/subnetworks/[^/]+$"
)
_IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[^\s:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})$")
_BUCKET = re.compile(r"^[a-z0-9][-_.a-z0-9]{1,221}[a-z0-9]$")


def gpu_experiment(gpus_per_worker: int) -> str:
    """Build the Dataflow ``worker_accelerator`` option for L4 GPUs with the NVIDIA driver.

    The syntax is the one in Dataflow's "Use NVIDIA L4 GPUs" guide. It is passed
    through ``additional_experiments`` because the Flex Template job resource
    has no ``dataflow_service_options`` field.
    """
    # NOTE: Dataflow documents worker_accelerator as a service option, and as an
    # experiment for older SDKs. No Google page states that a Flex Template
    # launch accepts it in additional_experiments, and no real launch tested it.
    return f"worker_accelerator=type:nvidia-l4;count:{gpus_per_worker};install-nvidia-driver"


def bigquery_table_spec(table: gcp.bigquery.Table) -> pulumi.Output[str]:
    """Build ``PROJECT:DATASET.TABLE``, the format the pipeline's table parameters take."""
    return pulumi.Output.concat(table.project, ":", table.dataset_id, ".", table.table_id)


@dataclass(frozen=True)
class StreamingJobArgs:
    """Inputs of ``StreamingJob``. Resource ids are the formats the pipeline parameters take."""

    project: str
    """Project ID of the job."""

    region: str
    """Dataflow region, where the workers also run."""

    prefix: str
    """Deterministic prefix of the job name, such as ``anomaly-dev``."""

    image: str
    """Flex Template container image with tag or digest, such as
    ``us-central1-docker.pkg.dev/P/R/pipeline:1.0.0``."""

    bucket: pulumi.Input[str]
    """Bucket name for the spec (``templates/``), temp (``tmp/``) and staging (``staging/``)."""

    service_account_email: pulumi.Input[str]
    """Email of the worker service account (no ``serviceAccount:`` prefix)."""

    subnetwork: pulumi.Input[str]
    """Worker subnetwork: ``regions/R/subnetworks/S`` or its full
    ``https://www.googleapis.com/compute/v1/projects/P/...`` self link
    (required for a Shared VPC host project)."""

    input_subscription: pulumi.Input[str]
    """``projects/P/subscriptions/S`` (the ``id`` of ``gcp.pubsub.Subscription``)."""

    detections_topic: pulumi.Input[str]
    """``projects/P/topics/T`` (the ``id`` of ``gcp.pubsub.Topic``)."""

    dead_letter_topic: pulumi.Input[str]
    """``projects/P/topics/T`` for records the pipeline could not process."""

    scored_events_table: pulumi.Input[str]
    """``PROJECT:DATASET.TABLE``, which ``bigquery_table_spec`` builds from a table."""

    detections_table: pulumi.Input[str]
    """``PROJECT:DATASET.TABLE`` for detections."""

    dead_letter_table: pulumi.Input[str]
    """``PROJECT:DATASET.TABLE`` for dead letters."""

    bigtable_project: pulumi.Input[str]
    """Project of the Bigtable enrichment instance."""

    bigtable_instance: pulumi.Input[str]
    """Bigtable instance name."""

    bigtable_table: pulumi.Input[str]
    """Bigtable table name."""

    triage_mode: TriageMode
    """``vertex``, ``worker`` (embedded Gemma on GPU workers) or ``none``."""

    vertex_endpoint: pulumi.Input[str] | None = None
    """``projects/P/locations/R/endpoints/ID``, required for ``vertex`` and rejected otherwise."""

    triage_max_per_second: float = 1.0
    """Maximum triage calls per second for each SDK worker process, not for the whole job."""

    machine_type: str = "n2-standard-2"
    """Worker machine type. Triage mode ``worker`` needs a G2 type (L4 GPUs)."""

    gpus_per_worker: int = 1
    """L4 GPUs per worker for triage mode ``worker``, equal to the G2 machine type's GPUs."""

    num_workers: int = 1
    """Initial number of workers."""

    max_workers: int = 3
    """Maximum number of workers for autoscaling."""

    streaming_mode: StreamingMode = "exactly_once"
    """Dataflow streaming mode. ``at_least_once`` costs less but may duplicate output."""

    launcher_machine_type: str | None = None
    """Machine type of the Flex Template launcher VM, or ``None`` for Dataflow's default."""

    sdk_container_image: str | None = None
    """Worker container image. ``None`` uses ``image``, which must then be built
    from the Beam SDK base image so that it can also run the workers."""

    iam_grants: Sequence[pulumi.Resource] = ()
    """IAM bindings the workers need. The job waits for them, so workers never start
    without their permissions."""

    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on the job and the spec object."""

    kms_key_name: pulumi.Input[str] | None = None
    """Cloud KMS key for the job's state and the spec object, or ``None`` for Google-managed."""

    protect: bool = False
    """Pulumi ``protect`` and ``deletion_policy = "PREVENT"`` on the job."""

    template_metadata: Mapping[str, Any] | None = None
    """Flex Template metadata. ``None`` loads ``pipeline.template_metadata.template_metadata()``."""

    def __post_init__(self) -> None:
        errors = self._errors()
        if errors:
            raise ValueError("invalid StreamingJobArgs: " + "; ".join(errors))

    def _errors(self) -> list[str]:
        errors = self._triage_errors()
        if self.streaming_mode not in STREAMING_MODES:
            errors.append(
                f"streaming_mode {self.streaming_mode!r} is invalid; "
                f"expected one of {STREAMING_MODES}"
            )
        if self.num_workers < 1:
            errors.append(f"num_workers must be >= 1, got {self.num_workers}")
        if not self.num_workers <= self.max_workers <= MAX_WORKERS_LIMIT:
            errors.append(
                f"max_workers {self.max_workers} must be between num_workers "
                f"({self.num_workers}) and {MAX_WORKERS_LIMIT}"
            )
        if not _IMAGE.match(self.image):
            errors.append(
                f"image {self.image!r} is invalid; expected REGISTRY/PATH:TAG or "
                "REGISTRY/PATH@sha256:DIGEST"
            )
        if isinstance(self.subnetwork, str) and not _SUBNETWORK.match(self.subnetwork):
            errors.append(
                f"subnetwork {self.subnetwork!r} is invalid; expected regions/R/subnetworks/S "
                "or the subnetwork's self link"
            )
        if isinstance(self.bucket, str) and not _BUCKET.match(self.bucket):
            errors.append(f"bucket {self.bucket!r} is not a bucket name (give the name, not gs://)")
        return errors

    def _triage_errors(self) -> list[str]:
        errors: list[str] = []
        if self.triage_mode not in TRIAGE_MODES:
            errors.append(
                f"triage_mode {self.triage_mode!r} is invalid; expected one of {TRIAGE_MODES}"
            )
        if self.triage_mode == "vertex" and self.vertex_endpoint is None:
            errors.append(
                "vertex_endpoint is missing; triage_mode 'vertex' needs the endpoint as "
                "projects/P/locations/R/endpoints/ID (ModelServing.endpoint_name)"
            )
        if self.triage_mode != "vertex" and self.vertex_endpoint is not None:
            errors.append(
                f"vertex_endpoint is set but triage_mode is {self.triage_mode!r}; "
                "remove it or use triage_mode 'vertex'"
            )
        if self.triage_mode == "worker":
            expected_gpus = G2_GPUS_PER_MACHINE.get(self.machine_type)
            if expected_gpus is None:
                errors.append(
                    f"machine_type {self.machine_type!r} has no L4 GPU; triage_mode 'worker' "
                    f"needs one of {sorted(G2_GPUS_PER_MACHINE)}"
                )
            elif self.gpus_per_worker != expected_gpus:
                errors.append(
                    f"gpus_per_worker {self.gpus_per_worker} does not match machine_type "
                    f"{self.machine_type!r}, which has {expected_gpus} L4 GPU(s)"
                )
        if not 0 < self.triage_max_per_second < math.inf:
            fix = (
                "pass a finite number above 0 or omit it, because triage_mode 'none' makes "
                "no triage calls"
                if self.triage_mode == "none"
                else "pass a finite number above 0, or use triage_mode 'none' to turn triage off"
            )
            errors.append(f"triage_max_per_second {self.triage_max_per_second} is invalid; {fix}")
        return errors


def load_template_metadata() -> dict[str, Any]:
    """Return ``pipeline.template_metadata.template_metadata()``.

    The import is deferred because it loads Apache Beam, which took about a second
    on the 2-core development VM.
    """
    from pipeline.template_metadata import template_metadata

    return template_metadata()


def template_spec(image: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Build the Flex Template spec that ``gcloud dataflow flex-template build`` would write."""
    return {"image": image, "sdkInfo": {"language": "PYTHON"}, "metadata": dict(metadata)}


def spec_object_name(job_name: str, spec_json: str) -> str:
    """Build ``templates/<job>/<hash>.json``, whose hash changes whenever the spec does."""
    digest = hashlib.sha256(spec_json.encode("utf-8")).hexdigest()[:16]
    return f"templates/{job_name}/{digest}.json"


def format_rate(value: float) -> str:
    """Format a rate as a plain decimal (``0.00001``, never ``1e-05``) for the parameter regex."""
    text = format(Decimal(str(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def job_parameters(args: StreamingJobArgs) -> dict[str, pulumi.Input[str]]:
    """Build the template parameters the stack passes to the pipeline."""
    parameters: dict[str, pulumi.Input[str]] = {
        "input_subscription": args.input_subscription,
        "detections_topic": args.detections_topic,
        "dead_letter_topic": args.dead_letter_topic,
        "scored_events_table": args.scored_events_table,
        "detections_table": args.detections_table,
        "dead_letter_table": args.dead_letter_table,
        "bigtable_project": args.bigtable_project,
        "bigtable_instance": args.bigtable_instance,
        "bigtable_table": args.bigtable_table,
        "triage_handler": TRIAGE_HANDLER_BY_MODE[args.triage_mode],
        "triage_max_per_second": format_rate(args.triage_max_per_second),
    }
    if args.vertex_endpoint is not None:
        parameters["vertex_endpoint"] = args.vertex_endpoint
    return parameters


def job_experiments(args: StreamingJobArgs) -> list[str]:
    """Build ``additional_experiments``: the streaming mode and the GPU option."""
    experiments: list[str] = []
    if args.streaming_mode == "at_least_once":
        experiments.append(AT_LEAST_ONCE_EXPERIMENT)
    if args.triage_mode == "worker":
        experiments.append(gpu_experiment(args.gpus_per_worker))
    return experiments


def check_against_metadata(
    args: StreamingJobArgs, parameters: Mapping[str, pulumi.Input[str]], metadata: Mapping[str, Any]
) -> None:
    """Raise ValueError when the job and the template metadata disagree.

    Checks that every parameter is declared, that every plain-string value matches
    the declared regexes and that the template supports the streaming mode.
    Values that are Outputs are checked at deployment time by ``checked_parameter``.
    """
    declared = _declared_parameters(metadata)
    errors: list[str] = []
    undeclared = sorted(set(parameters) - set(declared))
    if undeclared:
        errors.append(
            f"parameters {undeclared} are not declared in the template metadata; "
            "declare them in pipeline/options.py or stop passing them"
        )
    for name, value in parameters.items():
        if isinstance(value, str) and name in declared:
            error = _regex_error(name, value, declared[name])
            if error:
                errors.append(error)
    support_key = (
        "supportsAtLeastOnce" if args.streaming_mode == "at_least_once" else "supportsExactlyOnce"
    )
    if metadata.get(support_key) is False:
        errors.append(
            f"streaming_mode {args.streaming_mode!r} is not supported: the template metadata "
            f"sets {support_key} to false"
        )
    if errors:
        raise ValueError("streaming job does not match the template metadata: " + "; ".join(errors))


def _declared_parameters(metadata: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    return {
        parameter["name"]: tuple(parameter.get("regexes", ()))
        for parameter in metadata.get("parameters", ())
    }


def _regex_error(name: str, value: str, regexes: tuple[str, ...]) -> str | None:
    if not regexes or any(re.match(pattern, value) for pattern in regexes):
        return None
    return f"parameter {name}={value!r} does not match {' or '.join(regexes)}"


def checked_parameter(
    name: str, value: pulumi.Input[str], regexes: tuple[str, ...]
) -> pulumi.Input[str]:
    """Return ``value``, checked against ``regexes`` once it resolves if it is an Output.

    Plain strings are returned unchanged because ``check_against_metadata`` has
    already checked them.
    """
    if isinstance(value, str):
        return value

    def check(resolved: str) -> str:
        error = _regex_error(name, resolved, regexes)
        if error:
            raise ValueError(error)
        return resolved

    return pulumi.Output.from_input(value).apply(check)  # type: ignore[arg-type]


class StreamingJob(pulumi.ComponentResource):
    """Flex Template spec object and the Dataflow streaming job that runs the pipeline."""

    spec: gcp.storage.BucketObject
    job: gcp.dataflow.FlexTemplateJob

    job_name: str
    """Deterministic Dataflow job name, which the monitoring filters match."""

    job_id: pulumi.Output[str]
    """Dataflow job ID of the current run."""

    template_path: pulumi.Output[str]
    """``gs://`` path of the spec object."""

    def __init__(
        self, name: str, args: StreamingJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("dataflow", "StreamingJob"), name, None, opts)

        metadata = (
            dict(args.template_metadata)
            if args.template_metadata is not None
            else load_template_metadata()
        )
        parameters = job_parameters(args)
        check_against_metadata(args, parameters, metadata)
        declared = _declared_parameters(metadata)

        self.job_name = resource_name("dataflow_job", args.prefix, "anomaly-detection")
        spec_json = json.dumps(template_spec(args.image, metadata), indent=2, sort_keys=True)
        self.spec = gcp.storage.BucketObject(
            f"{name}-spec",
            bucket=args.bucket,
            name=spec_object_name(self.job_name, spec_json),
            content=spec_json,
            content_type="application/json",
            kms_key_name=args.kms_key_name,
            opts=child_opts(self, opts),
        )
        self.template_path = pulumi.Output.concat("gs://", self.spec.bucket, "/", self.spec.name)

        bucket_url = pulumi.Output.concat("gs://", args.bucket)
        self.job = gcp.dataflow.FlexTemplateJob(
            f"{name}-job",
            project=args.project,
            region=args.region,
            name=self.job_name,
            container_spec_gcs_path=self.template_path,
            parameters={
                key: checked_parameter(key, value, declared.get(key, ()))
                for key, value in parameters.items()
            },
            service_account_email=args.service_account_email,
            subnetwork=args.subnetwork,
            ip_configuration="WORKER_IP_PRIVATE",
            enable_streaming_engine=True,
            kms_key_name=args.kms_key_name,
            machine_type=args.machine_type,
            num_workers=args.num_workers,
            max_workers=args.max_workers,
            autoscaling_algorithm="THROUGHPUT_BASED",
            launcher_machine_type=args.launcher_machine_type,
            sdk_container_image=args.sdk_container_image or args.image,
            additional_experiments=job_experiments(args) or None,
            temp_location=pulumi.Output.concat(bucket_url, "/tmp"),
            staging_location=pulumi.Output.concat(bucket_url, "/staging"),
            labels=dict(args.labels),
            # Drain finishes in-flight windows and delivers their output before the
            # job stops, where cancel would drop them.
            on_delete="drain",
            deletion_policy="PREVENT" if args.protect else "DELETE",
            opts=child_opts(self, opts, protect=args.protect, depends_on=list(args.iam_grants)),
        )
        self.job_id = self.job.job_id

        self.register_outputs(
            {
                "job_name": self.job_name,
                "job_id": self.job_id,
                "template_path": self.template_path,
            }
        )
