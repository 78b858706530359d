"""Cloud Monitoring for the pipeline: email channels, alert policies with runbooks, a dashboard.

Every filter names the job, subscription or endpoint given in the Args, so a
project that runs several stacks gets separate alerts per stack.

Counter-based alerts (stall, anomaly rate, triage failures) use PromQL because
Dataflow reports element counts and Beam counters as running totals (GAUGE
metrics). PromQL's ``delta()`` over a window turns a running total into a count
per window, which the threshold aligners of the Monitoring API cannot do for
GAUGE metrics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Template
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import child_opts, component_type
from pipeline import metrics as pipeline_metrics

TriageMode = Literal["vertex", "worker", "none"]
TRIAGE_MODES: tuple[TriageMode, ...] = ("vertex", "worker", "none")

SYSTEM_LAG_METRIC = "dataflow.googleapis.com/job/system_lag"
WATERMARK_AGE_METRIC = "dataflow.googleapis.com/job/data_watermark_age"
IS_FAILED_METRIC = "dataflow.googleapis.com/job/is_failed"
ELEMENT_COUNT_METRIC = "dataflow.googleapis.com/job/element_count"
# NOTE: the metric kind of user_counter (GAUGE running total, as assumed by the
# delta() queries below) is not confirmed by a Google page opened for this code.
USER_COUNTER_METRIC = "dataflow.googleapis.com/job/user_counter"
"""Beam counters of a Dataflow job. The label ``metric_name`` is the counter name."""
UNDELIVERED_METRIC = "pubsub.googleapis.com/subscription/num_undelivered_messages"
ENDPOINT_ERRORS_METRIC = "aiplatform.googleapis.com/prediction/online/error_count"
ENDPOINT_PREDICTIONS_METRIC = "aiplatform.googleapis.com/prediction/online/prediction_count"
ENDPOINT_LATENCY_METRIC = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
"""Distribution of online prediction latency in milliseconds."""

DATAFLOW_RESOURCE = "dataflow_job"
SUBSCRIPTION_RESOURCE = "pubsub_subscription"
ENDPOINT_RESOURCE = "aiplatform.googleapis.com/Endpoint"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

DATAFLOW_MONITORING_DOC = "https://cloud.google.com/dataflow/docs/guides/using-monitoring-intf"
DATAFLOW_TROUBLESHOOTING_DOC = (
    "https://cloud.google.com/dataflow/docs/guides/troubleshooting-your-pipeline"
)
PUBSUB_DEAD_LETTER_DOC = "https://cloud.google.com/pubsub/docs/handling-failures"


@dataclass(frozen=True)
class AlertThresholds:
    """When each alert fires. The defaults are starting points that the stack config overrides."""

    system_lag_seconds: int = 300
    """Maximum age of an element waiting in the job, for 5 minutes."""

    data_freshness_seconds: int = 600
    """Maximum age of the output watermark (event time not yet complete), for 5 minutes."""

    stall_minutes: int = 15
    """Window in which the job processed no element although its input had a backlog."""

    dead_letter_backlog: int = 0
    """Undelivered dead-letter messages above which the alert fires (0: any message)."""

    anomaly_rate: float = 0.05
    """Fraction of scored events flagged as anomalies over 10 minutes."""

    triage_failures: int = 5
    """Triage failures per 10 minutes above which the alert fires."""

    endpoint_error_rate: float = 0.05
    """Fraction of failed Vertex AI predictions over 5 minutes (triage mode ``vertex``)."""

    endpoint_latency_ms: float = 5000.0
    """99th percentile of Vertex AI prediction latency, in milliseconds, for 5 minutes."""

    def __post_init__(self) -> None:
        errors: list[str] = []
        for name in ("system_lag_seconds", "data_freshness_seconds", "stall_minutes"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("dead_letter_backlog", "triage_failures"):
            if getattr(self, name) < 0:
                errors.append(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("anomaly_rate", "endpoint_error_rate"):
            if not 0 < getattr(self, name) < 1:
                errors.append(
                    f"{name} is a fraction and must be in (0, 1), got {getattr(self, name)}"
                )
        if self.endpoint_latency_ms <= 0:
            errors.append(f"endpoint_latency_ms must be > 0, got {self.endpoint_latency_ms}")
        if errors:
            raise ValueError("invalid AlertThresholds: " + "; ".join(errors))


@dataclass(frozen=True)
class PipelineCounters:
    """Names of the Beam counters the pipeline reports (label ``metric_name``).

    The defaults are the names ``pipeline.metrics`` declares, so they follow the pipeline.
    """

    events_scored: str = pipeline_metrics.SCORED
    anomalies: str = pipeline_metrics.ANOMALIES
    triage_failures: str = pipeline_metrics.TRIAGE_FAILURES


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of ``Monitoring``."""

    project: str
    """Project ID of the alert policies and the dashboard."""

    prefix: str
    """Prefix of display names, such as ``anomaly-dev``."""

    job_name: str
    """Dataflow job name (``StreamingJob.job_name``), which the filters match."""

    input_subscription_id: pulumi.Input[str]
    """Short name of the input subscription (the ``subscription_id`` label, not the path)."""

    dead_letter_subscription_id: pulumi.Input[str]
    """Short name of the subscription on the dead-letter topic."""

    triage_mode: TriageMode
    """Triage mode: ``vertex`` adds the endpoint alerts, ``none`` drops the triage
    failure alert."""

    notification_emails: Sequence[str] = ()
    """Addresses that receive every alert. Without any, incidents only appear in the console."""

    vertex_endpoint_id: pulumi.Input[str] | None = None
    """Numeric endpoint ID (``ModelServing.endpoint_id``), required for triage mode ``vertex``."""

    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    counters: PipelineCounters = field(default_factory=PipelineCounters)

    labels: Mapping[str, str] = field(default_factory=dict)
    """User labels on the alert policies and the notification channels."""

    def __post_init__(self) -> None:
        errors: list[str] = []
        if self.triage_mode not in TRIAGE_MODES:
            errors.append(
                f"triage_mode {self.triage_mode!r} is invalid; expected one of {TRIAGE_MODES}"
            )
        if self.triage_mode == "vertex" and self.vertex_endpoint_id is None:
            errors.append(
                "vertex_endpoint_id is missing; triage mode 'vertex' needs the numeric "
                "endpoint ID (ModelServing.endpoint_id) for the endpoint alerts"
            )
        if self.triage_mode != "vertex" and self.vertex_endpoint_id is not None:
            errors.append(
                f"vertex_endpoint_id is set but triage_mode is {self.triage_mode!r}; "
                "remove it or use triage mode 'vertex'"
            )
        for email in self.notification_emails:
            if not _EMAIL.match(email):
                errors.append(f"notification email {email!r} is not an email address")
        if len(set(self.notification_emails)) != len(self.notification_emails):
            errors.append("notification_emails contains duplicates; list each address once")
        if errors:
            raise ValueError("invalid MonitoringArgs: " + "; ".join(errors))


@dataclass(frozen=True)
class AlertDefinition:
    """One alert policy: its condition and the runbook shown in the notification."""

    key: str
    display_name: str
    severity: Literal["CRITICAL", "ERROR", "WARNING"]
    condition: gcp.monitoring.AlertPolicyConditionArgs
    runbook: str
    links: tuple[tuple[str, str], ...]


def _render(template: str, **values: pulumi.Input[str]) -> pulumi.Output[str]:
    """Substitute ``$name`` placeholders with resolved Inputs (PromQL uses braces, not ``$``)."""
    return pulumi.Output.all(**values).apply(
        lambda resolved: Template(template).substitute(resolved)
    )


def _threshold(
    display_name: str,
    metric_filter: pulumi.Input[str],
    threshold: float,
    *,
    aligner: str = "ALIGN_MAX",
    duration: str = "300s",
) -> gcp.monitoring.AlertPolicyConditionArgs:
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name=display_name,
        condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
            filter=metric_filter,
            comparison="COMPARISON_GT",
            threshold_value=threshold,
            duration=duration,
            aggregations=[
                gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                    alignment_period="60s",
                    per_series_aligner=aligner,
                )
            ],
            trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(count=1),
        ),
    )


def _promql(
    display_name: str, query: pulumi.Input[str], duration: str = "0s"
) -> gcp.monitoring.AlertPolicyConditionArgs:
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name=display_name,
        condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
            query=query,
            duration=duration,
            evaluation_interval="60s",
        ),
    )


def job_filter(metric_type: str, job_name: str) -> str:
    """Build a Monitoring filter for one metric of the Dataflow job named ``job_name``."""
    return (
        f'metric.type="{metric_type}" AND resource.type="{DATAFLOW_RESOURCE}" '
        f'AND resource.label.job_name="{job_name}"'
    )


def subscription_filter(metric_type: str, subscription_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """Build a Monitoring filter for one metric of one Pub/Sub subscription."""
    return _render(
        f'metric.type="{metric_type}" AND resource.type="{SUBSCRIPTION_RESOURCE}" '
        'AND resource.label.subscription_id="$subscription"',
        subscription=subscription_id,
    )


def endpoint_filter(metric_type: str, endpoint_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """Build a Monitoring filter for one metric of one Vertex AI endpoint."""
    return _render(
        f'metric.type="{metric_type}" AND resource.type="{ENDPOINT_RESOURCE}" '
        'AND resource.label.endpoint_id="$endpoint"',
        endpoint=endpoint_id,
    )


def counter_selector(job_name: str, counter: str) -> str:
    """Build the PromQL selector of one Beam counter of the job."""
    return (
        f'{{"__name__"="{USER_COUNTER_METRIC}","monitored_resource"="{DATAFLOW_RESOURCE}",'
        f'"job_name"="{job_name}","metric_name"="{counter}"}}'
    )


def stall_query(
    job_name: str, input_subscription_id: pulumi.Input[str], minutes: int
) -> pulumi.Output[str]:
    """Build the PromQL query that is true when the job processed nothing while input waited."""
    elements = (
        f'{{"__name__"="{ELEMENT_COUNT_METRIC}","monitored_resource"="{DATAFLOW_RESOURCE}",'
        f'"job_name"="{job_name}"}}'
    )
    backlog = (
        f'{{"__name__"="{UNDELIVERED_METRIC}","monitored_resource"="{SUBSCRIPTION_RESOURCE}",'
        '"subscription_id"="$subscription"}'
    )
    return _render(
        f"sum(delta({elements}[{minutes}m])) == 0 "
        f"and on() sum(min_over_time({backlog}[{minutes}m])) > 0",
        subscription=input_subscription_id,
    )


def anomaly_rate_query(job_name: str, counters: PipelineCounters, rate: float) -> str:
    """Build the PromQL query for the fraction of scored events flagged over 10 minutes."""
    anomalies = counter_selector(job_name, counters.anomalies)
    scored = counter_selector(job_name, counters.events_scored)
    return f"sum(delta({anomalies}[10m])) / sum(delta({scored}[10m])) > {rate}"


def triage_failure_series(job_name: str, counters: PipelineCounters) -> str:
    """Build the PromQL expression for triage failures per 10 minutes."""
    return f"sum(delta({counter_selector(job_name, counters.triage_failures)}[10m]))"


def triage_failure_query(job_name: str, counters: PipelineCounters, limit: int) -> str:
    """Build the PromQL query for triage failures over 10 minutes."""
    return f"{triage_failure_series(job_name, counters)} > {limit}"


def _console_links(args: MonitoringArgs) -> tuple[tuple[str, str], ...]:
    return (
        ("Dataflow jobs", f"https://console.cloud.google.com/dataflow/jobs?project={args.project}"),
        (
            "Job logs",
            "https://console.cloud.google.com/logs/query;query="
            f"resource.type%3D%22dataflow_step%22?project={args.project}",
        ),
    )


def alert_definitions(args: MonitoringArgs) -> list[AlertDefinition]:
    """Build the alert policies for ``args``: seven, six without triage, nine for ``vertex``."""
    limits = args.thresholds
    job = args.job_name
    console = _console_links(args)
    definitions = [
        AlertDefinition(
            key="system-lag",
            display_name=f"{args.prefix}: Dataflow system lag high",
            severity="ERROR",
            condition=_threshold(
                f"system lag > {limits.system_lag_seconds}s",
                job_filter(SYSTEM_LAG_METRIC, job),
                limits.system_lag_seconds,
            ),
            runbook=(
                f"Elements wait more than {limits.system_lag_seconds} s in job `{job}`, so "
                "detections arrive late.\n\n"
                "First checks:\n"
                "1. Job page: is autoscaling at `max_workers`? Raise `max_workers` in the "
                "stack config.\n"
                "2. Job page, step view: which step has the highest wall time? Triage steps "
                "point at the model (endpoint latency or GPU load), the Bigtable lookup at "
                "Bigtable CPU.\n"
                "3. Worker logs: repeated errors and retries also build lag."
            ),
            links=(*console, ("Dataflow monitoring", DATAFLOW_MONITORING_DOC)),
        ),
        AlertDefinition(
            key="data-freshness",
            display_name=f"{args.prefix}: Dataflow data freshness low",
            severity="ERROR",
            condition=_threshold(
                f"watermark age > {limits.data_freshness_seconds}s",
                job_filter(WATERMARK_AGE_METRIC, job),
                limits.data_freshness_seconds,
            ),
            runbook=(
                f"The output watermark of job `{job}` is more than "
                f"{limits.data_freshness_seconds} s behind, so event-time windows close late.\n\n"
                "First checks:\n"
                "1. Input subscription backlog: a growing backlog means the job is too slow "
                "(see the system lag alert).\n"
                "2. Publishers: events with old event times, or one idle partition, hold the "
                "watermark back.\n"
                "3. Worker logs for a step stuck on one key (hot entity)."
            ),
            links=(*console, ("Dataflow monitoring", DATAFLOW_MONITORING_DOC)),
        ),
        AlertDefinition(
            key="job-failed",
            display_name=f"{args.prefix}: Dataflow job failed",
            severity="CRITICAL",
            condition=_threshold(
                "job is failed", job_filter(IS_FAILED_METRIC, job), 0, duration="0s"
            ),
            runbook=(
                f"Job `{job}` failed; no events are scored until it runs again.\n\n"
                "First checks:\n"
                "1. Job logs, severity ERROR: the first error names the cause (permissions, "
                "quota, an invalid parameter, the container image).\n"
                "2. After fixing the cause, run `pulumi up` to launch the job again. Events "
                "wait in the input subscription for its retention period."
            ),
            links=(*console, ("Dataflow troubleshooting", DATAFLOW_TROUBLESHOOTING_DOC)),
        ),
        AlertDefinition(
            key="job-stalled",
            display_name=f"{args.prefix}: Dataflow job stalled",
            severity="CRITICAL",
            condition=_promql(
                f"no elements for {limits.stall_minutes} min with input waiting",
                stall_query(job, args.input_subscription_id, limits.stall_minutes),
            ),
            runbook=(
                f"Job `{job}` processed no element for {limits.stall_minutes} minutes while its "
                "input subscription had undelivered messages.\n\n"
                "First checks:\n"
                "1. Job page: are workers running? Zero workers points at quota, the subnetwork "
                "or the worker service account.\n"
                "2. Worker logs: a crash loop (for example the container image or the model "
                "failing to load) stops all processing.\n"
                "3. The worker service account still needs `roles/pubsub.subscriber` on the input "
                "subscription."
            ),
            links=(*console, ("Dataflow troubleshooting", DATAFLOW_TROUBLESHOOTING_DOC)),
        ),
        AlertDefinition(
            key="dead-letter-backlog",
            display_name=f"{args.prefix}: dead-letter messages waiting",
            severity="WARNING",
            condition=_threshold(
                f"dead-letter backlog > {limits.dead_letter_backlog}",
                subscription_filter(UNDELIVERED_METRIC, args.dead_letter_subscription_id),
                limits.dead_letter_backlog,
                duration="60s",
            ),
            runbook=(
                "Records that the pipeline could not process wait on the dead-letter "
                "subscription. Each one carries the reason.\n\n"
                "First checks:\n"
                "1. The dead-letter BigQuery table: group by reason to see whether one producer "
                "sends invalid events.\n"
                "2. Fix the producer or the schema, then replay the messages from the "
                "dead-letter subscription to the input topic."
            ),
            links=(*console, ("Pub/Sub dead-letter topics", PUBSUB_DEAD_LETTER_DOC)),
        ),
        AlertDefinition(
            key="anomaly-rate",
            display_name=f"{args.prefix}: anomaly rate high",
            severity="WARNING",
            condition=_promql(
                f"anomaly rate > {limits.anomaly_rate}",
                anomaly_rate_query(job, args.counters, limits.anomaly_rate),
            ),
            runbook=(
                f"More than {limits.anomaly_rate:.1%} of scored events were flagged in 10 "
                "minutes.\n\n"
                "First checks:\n"
                "1. The detections table: are the flags spread over many entities (a real "
                "incident or a broken producer) or one entity?\n"
                "2. A deployment just before the rise: the detector starts cold and flags more "
                "until each entity has passed its warm-up."
            ),
            links=console,
        ),
    ]
    if args.triage_mode != "none":
        definitions.append(
            AlertDefinition(
                key="triage-failures",
                display_name=f"{args.prefix}: triage failures",
                severity="WARNING",
                condition=_promql(
                    f"triage failures > {limits.triage_failures} in 10 min",
                    triage_failure_query(job, args.counters, limits.triage_failures),
                ),
                runbook=(
                    f"More than {limits.triage_failures} detections in 10 minutes could not be "
                    "triaged. They are still delivered and dead-lettered with the error.\n\n"
                    "First checks:\n"
                    "1. Worker logs for the triage error (timeouts, quota, model loading).\n"
                    "2. Triage mode vertex: the endpoint alerts and the endpoint's page.\n"
                    "3. Triage mode worker: GPU memory and the model download in worker logs."
                ),
                links=console,
            )
        )
    if args.vertex_endpoint_id is not None:
        definitions.extend(_endpoint_definitions(args, args.vertex_endpoint_id))
    return definitions


def _endpoint_definitions(
    args: MonitoringArgs, endpoint_id: pulumi.Input[str]
) -> list[AlertDefinition]:
    limits = args.thresholds
    endpoint_link = (
        "Vertex AI endpoints",
        f"https://console.cloud.google.com/vertex-ai/online-prediction/endpoints?project={args.project}",
    )
    error_rate = gcp.monitoring.AlertPolicyConditionArgs(
        display_name=f"endpoint error rate > {limits.endpoint_error_rate}",
        condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
            filter=endpoint_filter(ENDPOINT_ERRORS_METRIC, endpoint_id),
            denominator_filter=endpoint_filter(ENDPOINT_PREDICTIONS_METRIC, endpoint_id),
            comparison="COMPARISON_GT",
            threshold_value=limits.endpoint_error_rate,
            duration="300s",
            aggregations=[_rate_sum()],
            denominator_aggregations=[
                gcp.monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                    alignment_period="300s",
                    per_series_aligner="ALIGN_RATE",
                    cross_series_reducer="REDUCE_SUM",
                )
            ],
            trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(count=1),
        ),
    )
    return [
        AlertDefinition(
            key="endpoint-errors",
            display_name=f"{args.prefix}: Gemma endpoint errors",
            severity="ERROR",
            condition=error_rate,
            runbook=(
                f"More than {limits.endpoint_error_rate:.1%} of predictions on the Gemma endpoint "
                "failed over 5 minutes; those detections get triage status failed.\n\n"
                "First checks:\n"
                "1. Endpoint page: are replicas running? Replicas lost to a GPU stock-out show "
                "as fewer replicas than min_replicas.\n"
                "2. Endpoint logs for 429 (quota or overload: lower triage_max_per_second or raise "
                "max_replicas) and 5xx (model server errors)."
            ),
            links=(endpoint_link,),
        ),
        AlertDefinition(
            key="endpoint-latency",
            display_name=f"{args.prefix}: Gemma endpoint latency high",
            severity="WARNING",
            condition=_threshold(
                f"p99 latency > {limits.endpoint_latency_ms} ms",
                endpoint_filter(ENDPOINT_LATENCY_METRIC, endpoint_id),
                limits.endpoint_latency_ms,
                aligner="ALIGN_PERCENTILE_99",
            ),
            runbook=(
                f"The 99th percentile of Gemma prediction latency is above "
                f"{limits.endpoint_latency_ms:.0f} ms, which adds to the pipeline's system lag.\n\n"
                "First checks:\n"
                "1. Endpoint page: GPU duty cycle near 100 % means too few replicas, so raise "
                "max_replicas (and the GPU quota).\n"
                "2. Longer prompts or outputs after a pipeline change also raise latency."
            ),
            links=(endpoint_link,),
        ),
    ]


def _rate_sum() -> gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs:
    return gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
        alignment_period="300s",
        per_series_aligner="ALIGN_RATE",
        cross_series_reducer="REDUCE_SUM",
    )


def dashboard_json(
    args: MonitoringArgs,
    input_subscription_id: str,
    dead_letter_subscription_id: str,
    vertex_endpoint_id: str | None,
) -> str:
    """Build the dashboard definition (Monitoring API ``Dashboard`` JSON) for resolved ids."""
    job = args.job_name
    counters = args.counters
    tiles: list[tuple[str, dict[str, Any]]] = [
        ("System lag (s)", _filter_query(job_filter(SYSTEM_LAG_METRIC, job), "ALIGN_MAX")),
        ("Watermark age (s)", _filter_query(job_filter(WATERMARK_AGE_METRIC, job), "ALIGN_MAX")),
        (
            "Elements per 5 min",
            {"prometheusQuery": _per_five_minutes(ELEMENT_COUNT_METRIC, job)},
        ),
        (
            "Input backlog (messages)",
            _filter_query(
                _plain_subscription_filter(UNDELIVERED_METRIC, input_subscription_id), "ALIGN_MAX"
            ),
        ),
        (
            "Dead-letter backlog (messages)",
            _filter_query(
                _plain_subscription_filter(UNDELIVERED_METRIC, dead_letter_subscription_id),
                "ALIGN_MAX",
            ),
        ),
        (
            "Anomalies per 10 min",
            {"prometheusQuery": f"sum(delta({counter_selector(job, counters.anomalies)}[10m]))"},
        ),
        (
            "Scored events per 10 min",
            {
                "prometheusQuery": (
                    f"sum(delta({counter_selector(job, counters.events_scored)}[10m]))"
                )
            },
        ),
        ("Job failed (1 = failed)", _filter_query(job_filter(IS_FAILED_METRIC, job), "ALIGN_MAX")),
    ]
    if args.triage_mode != "none":
        tiles.append(
            (
                "Triage failures per 10 min",
                {"prometheusQuery": triage_failure_series(job, counters)},
            )
        )
    if vertex_endpoint_id is not None:
        tiles.extend(
            [
                (
                    "Endpoint errors per second",
                    _filter_query(
                        _plain_endpoint_filter(ENDPOINT_ERRORS_METRIC, vertex_endpoint_id),
                        "ALIGN_RATE",
                    ),
                ),
                (
                    "Endpoint latency p99 (ms)",
                    _filter_query(
                        _plain_endpoint_filter(ENDPOINT_LATENCY_METRIC, vertex_endpoint_id),
                        "ALIGN_PERCENTILE_99",
                    ),
                ),
            ]
        )

    width, height = 24, 16
    layout_tiles = [
        {
            "xPos": (index % 2) * width,
            "yPos": (index // 2) * height,
            "width": width,
            "height": height,
            "widget": {
                "title": title,
                "xyChart": {"dataSets": [{"timeSeriesQuery": query, "plotType": "LINE"}]},
            },
        }
        for index, (title, query) in enumerate(tiles)
    ]
    dashboard = {
        "displayName": f"{args.prefix}: real-time anomaly detection",
        "mosaicLayout": {"columns": 2 * width, "tiles": layout_tiles},
    }
    return json.dumps(dashboard, indent=2, sort_keys=True)


def _filter_query(metric_filter: str, aligner: str) -> dict[str, Any]:
    return {
        "timeSeriesFilter": {
            "filter": metric_filter,
            "aggregation": {"alignmentPeriod": "60s", "perSeriesAligner": aligner},
        }
    }


def _per_five_minutes(metric_type: str, job_name: str) -> str:
    selector = (
        f'{{"__name__"="{metric_type}","monitored_resource"="{DATAFLOW_RESOURCE}",'
        f'"job_name"="{job_name}"}}'
    )
    return f"sum(delta({selector}[5m]))"


def _plain_subscription_filter(metric_type: str, subscription_id: str) -> str:
    return (
        f'metric.type="{metric_type}" AND resource.type="{SUBSCRIPTION_RESOURCE}" '
        f'AND resource.label.subscription_id="{subscription_id}"'
    )


def _plain_endpoint_filter(metric_type: str, endpoint_id: str) -> str:
    return (
        f'metric.type="{metric_type}" AND resource.type="{ENDPOINT_RESOURCE}" '
        f'AND resource.label.endpoint_id="{endpoint_id}"'
    )


class Monitoring(pulumi.ComponentResource):
    """Email channels, alert policies with runbooks, and a dashboard for one pipeline stack."""

    channels: list[gcp.monitoring.NotificationChannel]
    policies: dict[str, gcp.monitoring.AlertPolicy]
    """Alert policies by key (``system-lag``, ``job-failed``, ...)."""
    dashboard: gcp.monitoring.Dashboard

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("monitoring", "Monitoring"), name, None, opts)

        self.channels = [
            gcp.monitoring.NotificationChannel(
                f"{name}-email-{index}",
                project=args.project,
                type="email",
                display_name=f"{args.prefix}: {email}",
                labels={"email_address": email},
                user_labels=dict(args.labels),
                opts=child_opts(self, opts),
            )
            for index, email in enumerate(args.notification_emails)
        ]
        channel_ids = [channel.id for channel in self.channels]

        self.policies = {}
        for definition in alert_definitions(args):
            self.policies[definition.key] = gcp.monitoring.AlertPolicy(
                f"{name}-{definition.key}",
                project=args.project,
                display_name=definition.display_name,
                combiner="OR",
                conditions=[definition.condition],
                severity=definition.severity,
                notification_channels=channel_ids,
                documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                    subject=definition.display_name,
                    content=definition.runbook,
                    mime_type="text/markdown",
                    links=[
                        gcp.monitoring.AlertPolicyDocumentationLinkArgs(display_name=title, url=url)
                        for title, url in definition.links
                    ],
                ),
                alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close="1800s"),
                user_labels=dict(args.labels),
                opts=child_opts(self, opts),
            )

        dashboard_definition = pulumi.Output.all(
            args.input_subscription_id,
            args.dead_letter_subscription_id,
            args.vertex_endpoint_id,
        ).apply(lambda ids: dashboard_json(args, ids[0], ids[1], ids[2]))
        self.dashboard = gcp.monitoring.Dashboard(
            f"{name}-dashboard",
            project=args.project,
            dashboard_json=dashboard_definition,
            opts=child_opts(self, opts),
        )

        self.register_outputs(
            {
                "policy_names": {key: policy.name for key, policy in self.policies.items()},
                "dashboard_id": self.dashboard.id,
            }
        )
