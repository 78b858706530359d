"""Tests for the monitoring component: channels, alert policies and the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.components.monitoring import (
    AlertThresholds,
    Monitoring,
    MonitoringArgs,
    PipelineCounters,
)
from pipeline import metrics as pipeline_metrics
from tests.infra.mocks import declare

POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
DASHBOARD = "gcp:monitoring/dashboard:Dashboard"
JOB = "anomaly-dev-anomaly-detection"
ENDPOINT_ID = "4242424242"

BASE_KEYS = {
    "system-lag",
    "data-freshness",
    "job-failed",
    "job-stalled",
    "dead-letter-backlog",
    "anomaly-rate",
}


def make_args(**overrides: Any) -> MonitoringArgs:
    values: dict[str, Any] = {
        "project": "demo-project",
        "prefix": "anomaly-dev",
        "job_name": JOB,
        "input_subscription_id": "anomaly-dev-events",
        "dead_letter_subscription_id": "anomaly-dev-dead-letter",
        "triage_mode": "worker",
        "notification_emails": ["oncall@example.com"],
    }
    values.update(overrides)
    return MonitoringArgs(**values)


def vertex_args(**overrides: Any) -> MonitoringArgs:
    return make_args(triage_mode="vertex", vertex_endpoint_id=ENDPOINT_ID, **overrides)


def policies_by_key(args: MonitoringArgs) -> dict[str, dict[str, Any]]:
    result = declare(lambda: Monitoring("monitoring", args))
    prefix = "monitoring-"
    return {policy.name.removeprefix(prefix): policy.inputs for policy in result.of_type(POLICY)}


def condition_text(policy: dict[str, Any]):
    condition = policy["conditions"][0]
    threshold = condition.get("conditionThreshold")
    if threshold is not None:
        return threshold["filter"] + " " + threshold.get("denominatorFilter", "")
    return condition["conditionPrometheusQueryLanguage"]["query"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (make_args(triage_mode="none"), BASE_KEYS),
        (make_args(triage_mode="worker"), BASE_KEYS | {"triage-failures"}),
        (
            vertex_args(),
            BASE_KEYS | {"triage-failures", "endpoint-errors", "endpoint-latency"},
        ),
    ],
    ids=["none", "worker", "vertex"],
)
def test_policies_by_triage_mode(args, expected):
    assert set(policies_by_key(args)) == expected


@pytest.mark.parametrize(
    ("key", "metric"),
    [
        ("system-lag", "dataflow.googleapis.com/job/system_lag"),
        ("data-freshness", "dataflow.googleapis.com/job/data_watermark_age"),
        ("job-failed", "dataflow.googleapis.com/job/is_failed"),
        ("job-stalled", "dataflow.googleapis.com/job/element_count"),
        ("anomaly-rate", "dataflow.googleapis.com/job/user_counter"),
        ("triage-failures", "dataflow.googleapis.com/job/user_counter"),
    ],
)
def test_job_filters_name_job(key, metric):
    text = condition_text(policies_by_key(vertex_args())[key])

    assert metric in text
    assert JOB in text


def test_dead_letter_filter_names_subscription():
    text = condition_text(policies_by_key(make_args())["dead-letter-backlog"])

    assert 'metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages"' in text
    assert 'resource.label.subscription_id="anomaly-dev-dead-letter"' in text


def test_stall_query_checks_input_backlog():
    text = condition_text(
        policies_by_key(make_args(thresholds=AlertThresholds(stall_minutes=20)))["job-stalled"]
    )

    assert '"subscription_id"="anomaly-dev-events"' in text
    assert "[20m]" in text


@pytest.mark.parametrize(
    ("key", "metrics"),
    [
        (
            "endpoint-errors",
            [
                "aiplatform.googleapis.com/prediction/online/error_count",
                "aiplatform.googleapis.com/prediction/online/prediction_count",
            ],
        ),
        ("endpoint-latency", ["aiplatform.googleapis.com/prediction/online/prediction_latencies"]),
    ],
)
def test_endpoint_filters_name_endpoint(key, metrics):
    text = condition_text(policies_by_key(vertex_args())[key])

    for metric in metrics:
        assert metric in text
    assert f'resource.label.endpoint_id="{ENDPOINT_ID}"' in text


def test_endpoint_id_output_resolved():
    def build() -> Monitoring:
        endpoint_id = pulumi.Output.from_input("777")
        return Monitoring(
            "monitoring", make_args(triage_mode="vertex", vertex_endpoint_id=endpoint_id)
        )

    result = declare(build)
    latency = next(policy for policy in result.of_type(POLICY) if policy.name.endswith("latency"))

    assert 'resource.label.endpoint_id="777"' in condition_text(latency.inputs)
    definition = json.loads(result.one(DASHBOARD).inputs["dashboardJson"])
    assert any('endpoint_id="777"' in query for query in dashboard_queries(definition))


def test_counter_names_follow_pipeline():
    policies = policies_by_key(make_args())

    assert f'"metric_name"="{pipeline_metrics.ANOMALIES}"' in condition_text(
        policies["anomaly-rate"]
    )
    assert f'"metric_name"="{pipeline_metrics.SCORED}"' in condition_text(policies["anomaly-rate"])
    assert f'"metric_name"="{pipeline_metrics.TRIAGE_FAILURES}"' in condition_text(
        policies["triage-failures"]
    )


def test_custom_counter_names():
    counters = PipelineCounters(events_scored="n", anomalies="a", triage_failures="f")

    text = condition_text(policies_by_key(make_args(counters=counters))["triage-failures"])

    assert '"metric_name"="f"' in text


@pytest.mark.parametrize(
    ("key", "thresholds", "expected"),
    [
        ("system-lag", AlertThresholds(system_lag_seconds=120), 120),
        ("data-freshness", AlertThresholds(data_freshness_seconds=900), 900),
        ("dead-letter-backlog", AlertThresholds(dead_letter_backlog=10), 10),
        ("job-failed", AlertThresholds(), 0),
    ],
)
def test_threshold_values(key, thresholds, expected):
    policy = policies_by_key(make_args(thresholds=thresholds))[key]

    assert policy["conditions"][0]["conditionThreshold"]["thresholdValue"] == expected


@pytest.mark.parametrize(
    ("key", "thresholds", "fragment"),
    [
        ("anomaly-rate", AlertThresholds(anomaly_rate=0.2), "> 0.2"),
        ("triage-failures", AlertThresholds(triage_failures=7), "> 7"),
    ],
)
def test_promql_thresholds(key, thresholds, fragment):
    text = condition_text(policies_by_key(make_args(thresholds=thresholds))[key])

    assert text.endswith(fragment)


def test_endpoint_thresholds():
    thresholds = AlertThresholds(endpoint_error_rate=0.1, endpoint_latency_ms=1500)
    policies = policies_by_key(vertex_args(thresholds=thresholds))
    errors = policies["endpoint-errors"]["conditions"][0]["conditionThreshold"]
    latency = policies["endpoint-latency"]["conditions"][0]["conditionThreshold"]

    assert errors["thresholdValue"] == 0.1
    assert errors["aggregations"][0]["perSeriesAligner"] == "ALIGN_RATE"
    assert errors["denominatorAggregations"][0]["perSeriesAligner"] == "ALIGN_RATE"
    assert latency["thresholdValue"] == 1500
    assert latency["aggregations"][0]["perSeriesAligner"] == "ALIGN_PERCENTILE_99"


def test_documentation_on_every_policy():
    for key, policy in policies_by_key(vertex_args()).items():
        documentation = policy["documentation"]
        assert documentation["mimeType"] == "text/markdown", key
        assert "First checks:" in documentation["content"], key
        assert documentation["links"], key
        assert all(link["url"].startswith("https://") for link in documentation["links"]), key


def test_policies_notify_every_channel():
    emails = ["oncall@example.com", "data@example.com"]
    result = declare(lambda: Monitoring("monitoring", make_args(notification_emails=emails)))
    channels = result.of_type(CHANNEL)
    channel_ids = sorted(f"{channel.name}-id" for channel in channels)

    assert sorted(channel.inputs["labels"]["email_address"] for channel in channels) == sorted(
        emails
    )
    assert all(channel.inputs["type"] == "email" for channel in channels)
    for policy in result.of_type(POLICY):
        assert sorted(policy.inputs["notificationChannels"]) == channel_ids


def test_no_emails_no_channels():
    result = declare(lambda: Monitoring("monitoring", make_args(notification_emails=[])))

    assert result.of_type(CHANNEL) == []
    assert len(result.of_type(POLICY)) == len(BASE_KEYS) + 1


def test_labels_on_policies_and_channels():
    labels = {"environment": "dev", "app": "realtime-anomaly"}
    result = declare(lambda: Monitoring("monitoring", make_args(labels=labels)))

    for resource in [*result.of_type(POLICY), *result.of_type(CHANNEL)]:
        assert resource.inputs["userLabels"] == labels


def dashboard(args: MonitoringArgs):
    result = declare(lambda: Monitoring("monitoring", args))
    return json.loads(result.one(DASHBOARD).inputs["dashboardJson"])


def dashboard_queries(definition: dict[str, Any]) -> list[str]:
    queries = []
    for tile in definition["mosaicLayout"]["tiles"]:
        query = tile["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"]
        queries.append(query.get("prometheusQuery") or query["timeSeriesFilter"]["filter"])
    return queries


@pytest.mark.parametrize(
    ("args", "tiles"),
    [(make_args(triage_mode="none"), 8), (make_args(), 9), (vertex_args(), 11)],
    ids=["none", "worker", "vertex"],
)
def test_dashboard_tiles_by_mode(args, tiles):
    assert len(dashboard(args)["mosaicLayout"]["tiles"]) == tiles


def test_dashboard_names_resources():
    text = "\n".join(dashboard_queries(dashboard(vertex_args())))

    assert JOB in text
    assert "anomaly-dev-events" in text
    assert "anomaly-dev-dead-letter" in text
    assert ENDPOINT_ID in text


def test_dashboard_tiles_do_not_overlap():
    tiles = dashboard(vertex_args())["mosaicLayout"]["tiles"]
    positions = [(tile["xPos"], tile["yPos"]) for tile in tiles]

    assert len(set(positions)) == len(positions)
    assert all(tile["xPos"] + tile["width"] <= 48 for tile in tiles)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"triage_mode": "gpu"}, "triage_mode 'gpu' is invalid"),
        ({"triage_mode": "vertex"}, "vertex_endpoint_id is missing"),
        ({"vertex_endpoint_id": "1"}, "vertex_endpoint_id is set but triage_mode is 'worker'"),
        ({"notification_emails": ["oncall"]}, "notification email 'oncall' is not an email"),
        (
            {"notification_emails": ["a@example.com", "a@example.com"]},
            "notification_emails contains duplicates",
        ),
    ],
)
def test_invalid_args_rejected(overrides, message):
    with pytest.raises(ValueError, match="invalid MonitoringArgs") as error:
        make_args(**overrides)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"system_lag_seconds": 0}, "system_lag_seconds must be >= 1, got 0"),
        ({"stall_minutes": 0}, "stall_minutes must be >= 1, got 0"),
        ({"dead_letter_backlog": -1}, "dead_letter_backlog must be >= 0, got -1"),
        ({"anomaly_rate": 1.5}, "anomaly_rate is a fraction and must be in (0, 1), got 1.5"),
        ({"endpoint_error_rate": 0}, "endpoint_error_rate is a fraction"),
        ({"endpoint_latency_ms": 0}, "endpoint_latency_ms must be > 0, got 0"),
    ],
)
def test_invalid_thresholds_rejected(overrides, message):
    with pytest.raises(ValueError, match="invalid AlertThresholds") as error:
        AlertThresholds(**overrides)
    assert message in str(error.value)
