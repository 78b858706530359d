"""Tests for the plain-Python detector on constructed series."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import math
import random

import pytest

from pipeline.detector import (
    Detector,
    DetectorConfig,
    FeatureState,
    decode_state,
    encode_state,
)


def gaussian(count, mean=10.0, std=1.0, seed=1, name="v"):
    rng = random.Random(seed)
    return [{name: rng.gauss(mean, std)} for _ in range(count)]


def test_warmup_scores_zero():
    config = DetectorConfig(warmup_events=20)
    series = gaussian(20)
    series[10] = {"v": 1000.0}
    scores = Detector(config).score_series(series)
    assert all(score.anomaly_score == 0.0 for score in scores)
    assert not any(score.is_anomaly for score in scores)


def test_first_warm_event_can_alarm():
    series = [*gaussian(20), {"v": 1000.0}]
    scores = Detector(DetectorConfig(warmup_events=20)).score_series(series)
    assert scores[-1].is_anomaly


def test_spike_detected_and_neighbours_not():
    series = gaussian(200)
    series[120] = {"v": 20.0}
    scores = Detector().score_series(series)
    assert scores[120].is_anomaly
    assert scores[120].anomaly_score > 0.95
    assert not scores[119].is_anomaly
    assert not scores[121].is_anomaly


def test_spike_does_not_mask_next_spike():
    series = gaussian(200)
    series[120] = {"v": 20.0}
    series[125] = {"v": 20.0}
    scores = Detector().score_series(series)
    assert scores[125].is_anomaly


def test_false_alarm_rate_on_gaussian_noise():
    scores = Detector().score_series(gaussian(5000, seed=3))
    alarms = sum(score.is_anomaly for score in scores)
    # z_eff >= 4 has a Gaussian tail of about 6e-5; allow for the estimation noise.
    assert alarms <= 5


def test_drift_adapts_within_few_half_lives():
    series = gaussian(300)
    for index in range(150, 300):
        series[index] = {"v": series[index]["v"] + 10.0}
    scores = Detector().score_series(series)
    assert scores[150].is_anomaly
    assert not any(score.is_anomaly for score in scores[200:])


def test_constant_series_scores_zero_then_alarms_on_change():
    scores = Detector().score_series([{"v": 5.0}] * 40 + [{"v": 5.1}])
    assert all(score.anomaly_score == 0.0 for score in scores[:40])
    assert scores[40].is_anomaly


def test_constant_zero_series_uses_absolute_floor():
    scores = Detector().score_series([{"v": 0.0}] * 40 + [{"v": 1e-7}])
    assert not scores[40].is_anomaly


def test_multi_feature_one_deviates():
    rng = random.Random(5)
    series = [{"a": rng.gauss(0, 1), "b": rng.gauss(100, 5)} for _ in range(100)]
    series[80] = {"a": 0.0, "b": 160.0}
    scores = Detector().score_series(series)
    assert scores[80].is_anomaly
    by_feature = {feature.feature: feature for feature in scores[80].features}
    assert by_feature["b"].score > 0.95
    assert by_feature["a"].score < 0.5


def test_more_features_need_larger_deviation():
    config = DetectorConfig()
    single_feature = Detector(config)._combine([4.0])
    eight_features = Detector(config)._combine([4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert single_feature == pytest.approx(config.threshold)
    assert eight_features < single_feature


def test_missing_feature_keeps_its_state():
    detector = Detector()
    _, state = detector.score({}, {"a": 1.0, "b": 2.0})
    _, state = detector.score(state, {"a": 1.5})
    assert state["b"] == FeatureState(count=1, mean=2.0, var=0.0)
    assert state["a"].count == 2


def test_max_features_caps_state():
    detector = Detector(DetectorConfig(max_features=2))
    score, state = detector.score({}, {"a": 1.0, "b": 1.0, "c": 1.0})
    assert set(state) == {"a", "b"}
    assert score.untracked_features == 1


def test_baseline_is_state_before_update():
    detector = Detector()
    _, state = detector.score({}, {"v": 2.0})
    _, state = detector.score(state, {"v": 4.0})
    score, _ = detector.score(state, {"v": 10.0})
    feature = score.features[0]
    assert feature.mean == pytest.approx(3.0)
    assert feature.std == pytest.approx(1.0)
    assert feature.count == 2
    assert feature.value == 10.0


def test_state_encoding_round_trip():
    state = {"a": FeatureState(3, 1.5, 0.25), "b": FeatureState(1, -2.0, 0.0)}
    assert decode_state(encode_state(state)) == state
    assert decode_state(None) == {}


def test_z_at_threshold_default():
    assert DetectorConfig().z_at_threshold() == pytest.approx(4.0)
    assert math.isinf(DetectorConfig(threshold=1.0).z_at_threshold())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0.0}, "threshold=0.0"),
        ({"threshold": 1.5}, "threshold=1.5"),
        ({"warmup_events": 1}, "warmup_events=1"),
        ({"half_life_events": 0.0}, "half_life_events=0.0"),
        ({"clip_z": math.inf}, "clip_z=inf"),
        ({"relative_min_std": -1.0}, "relative_min_std=-1.0"),
        ({"max_features": 0}, "max_features=0"),
    ],
)
def test_config_rejects_invalid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DetectorConfig(**kwargs)
