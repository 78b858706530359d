"""Sample detections for triage tests and the latency benchmark."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.records import AttributeValue, BaselineStat, Detection

_DETECTED_AT = datetime(2026, 1, 15, 9, 30, 5, tzinfo=UTC)


def make_detection(
    *,
    event_id: str = "evt-0001",
    entity_id: str = "card-4242",
    features: Mapping[str, float] | None = None,
    baseline: Mapping[str, tuple[float, float, int, float]] | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    message: str | None = None,
    context: Mapping[str, Any] | None = None,
    anomaly_score: float = 0.97,
) -> Detection:
    """Build an untriaged Detection; `baseline` maps feature to (mean, std, count, score)."""
    feature_values = dict(features) if features is not None else {"amount": 980.0}
    stats = baseline if baseline is not None else {"amount": (42.5, 18.0, 230, 0.99)}
    return Detection(
        event_id=event_id,
        entity_id=entity_id,
        event_time=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        anomaly_score=anomaly_score,
        detector="ewm-zscore/1",
        features=feature_values,
        attributes=dict(attributes or {}),
        message=message,
        context=dict(context or {}),
        baseline=tuple(
            BaselineStat(
                feature=name,
                value=feature_values.get(name),
                mean=mean,
                std=std,
                count=count,
                score=score,
            )
            for name, (mean, std, count, score) in stats.items()
        ),
        triage=None,
        detected_at=_DETECTED_AT,
    )


def sample_detections() -> list[Detection]:
    """Return three detections of different kinds: payment, host metrics and sensor."""
    return [
        make_detection(
            event_id="evt-card-1",
            entity_id="card-4242",
            features={"amount": 980.0, "merchant_distance_km": 1450.0},
            baseline={
                "amount": (42.5, 18.0, 230, 0.99),
                "merchant_distance_km": (12.0, 9.5, 230, 0.98),
            },
            attributes={"merchant_category": "electronics", "country": "PT"},
            message="Card present purchase, chip read",
        ),
        make_detection(
            event_id="evt-host-7",
            entity_id="web-frontend-3",
            features={"cpu_util": 0.99, "p99_latency_ms": 2300.0, "error_rate": 0.004},
            baseline={
                "cpu_util": (0.35, 0.08, 5000, 0.97),
                "p99_latency_ms": (180.0, 40.0, 5000, 0.99),
                "error_rate": (0.003, 0.002, 5000, 0.2),
            },
            attributes={"region": "europe-west1", "service": "checkout"},
            message="Health check slow",
            anomaly_score=0.93,
        ),
        make_detection(
            event_id="evt-sensor-3",
            entity_id="pump-17",
            features={"vibration_mm_s": 7.1, "temperature_c": 61.0},
            baseline={
                "vibration_mm_s": (2.2, 0.6, 800, 0.96),
                "temperature_c": (58.0, 3.0, 800, 0.4),
            },
            attributes={"site": "plant-2"},
            anomaly_score=0.88,
        ),
    ]
