"""Tests for the plain-Python detector on constructed series and on part of the NAB corpus."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import csv
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.detector import (
    Detector,
    DetectorConfig,
    FeatureState,
    decode_state,
    encode_state,
)
from pipeline.labels import evaluate_windows, load_windows
from pipeline.records import to_micros
from pipeline.sources import parse_nab_time

NAB_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nab"
START = datetime(2024, 5, 1, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)
EVENTS_PER_DAY = 288

# Every event over the threshold is an anomaly.
NO_SUPPRESSION = DetectorConfig(refractory_events=0)
# Suppression, tail calibration and daily profile off.
PLAIN = DetectorConfig(refractory_events=0, tail_quantile=0.0, season_bins=0)


def gaussian(count, mean=10.0, std=1.0, seed=1, name="v"):
    rng = random.Random(seed)
    return [{name: rng.gauss(mean, std)} for _ in range(count)]


def times(count, step=FIVE_MINUTES):
    return [START + index * step for index in range(count)]


def daily_cycle(days, noise=2.0, seed=2):
    """A 5-minute series at 20 at night and 80 from 08:00 to 18:00, with Gaussian noise."""
    rng = random.Random(seed)
    return [
        {"v": (80.0 if 8 <= moment.hour < 18 else 20.0) + rng.gauss(0.0, noise)}
        for moment in times(days * EVENTS_PER_DAY)
    ]


def alarms(scores):
    return [index for index, score in enumerate(scores) if score.is_anomaly]


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


@pytest.mark.parametrize(
    ("config", "second_is_anomaly", "second_is_suppressed"),
    [
        (NO_SUPPRESSION, True, False),
        (DetectorConfig(), False, True),
    ],
    ids=["without-suppression", "default"],
)
def test_spike_does_not_mask_next_spike(config, second_is_anomaly, second_is_suppressed):
    series = gaussian(200)
    series[120] = {"v": 20.0}
    series[125] = {"v": 20.0}
    scores = Detector(config).score_series(series)
    # The clipped update keeps the baseline, so the second spike scores as high.
    assert scores[125].anomaly_score > 0.95
    assert scores[125].is_anomaly is second_is_anomaly
    assert scores[125].suppressed is second_is_suppressed


@pytest.mark.parametrize("config", [DetectorConfig(), PLAIN], ids=["default", "plain"])
def test_false_alarm_rate_on_gaussian_noise(config):
    scores = Detector(config).score_series(gaussian(5000, seed=3))
    # z_eff >= 4 has a Gaussian tail of about 6e-5; allow for the estimation noise.
    assert len(alarms(scores)) <= 5


def test_tail_quantile_stays_gaussian_on_gaussian_noise():
    detector = Detector()
    state: dict[str, FeatureState] = {}
    for features in gaussian(5000, seed=4):
        _, state = detector.score(state, features)
    # The 0.99 two-sided point of a standard normal is 2.576; estimation noise widens it.
    assert state["v"].tail_z == pytest.approx(2.576, abs=0.5)


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


def test_frequent_spikes_stop_alarming():
    # A series at 0 with a spike of 5 to 10 every 30 events: routine, not anomalous.
    rng = random.Random(6)
    series = [{"v": rng.uniform(5.0, 10.0) if index % 30 == 29 else 0.0} for index in range(6000)]
    default = alarms(Detector().score_series(series))
    plain = alarms(Detector(PLAIN).score_series(series))
    assert len(plain) == 200
    assert 0 < len(default) <= 50
    # The tracked quantile rises by 5% per spike until the spikes no longer stand out.
    assert all(index < 3000 for index in default)


def test_daily_cycle_learned_from_event_time():
    series = daily_cycle(days=7)
    moments = times(len(series))
    # Only the profile differs between the two runs.
    config = DetectorConfig(refractory_events=0, tail_quantile=0.0)
    untimed = alarms(Detector(config).score_series(series))
    timed = Detector(config).score_series(series, moments)
    # The level baseline alarms at the jumps at 08:00 and 18:00 every day; the profile does not.
    assert len(untimed) >= 2 * 7
    assert alarms(timed[2 * EVENTS_PER_DAY :]) == []
    assert timed[-1].features[0].daily


def test_daily_profile_catches_value_wrong_for_the_hour():
    series = daily_cycle(days=7)
    moments = times(len(series))
    # 05:00 on day 7, when the series is at 20: a value that is normal at noon.
    index = 6 * EVENTS_PER_DAY + 60
    series[index] = {"v": 80.0}
    timed = Detector().score_series(series, moments)
    assert timed[index].is_anomaly
    assert timed[index].features[0].mean == pytest.approx(20.0, abs=2.0)


def test_daily_profile_unused_without_cycle():
    series = gaussian(3000, seed=7)
    scores = Detector().score_series(series, times(len(series)))
    # Measured: the profile wins on 71 of the 3,000 events, by chance, with no alarm.
    assert sum(feature.daily for score in scores for feature in score.features) < 300
    assert len(alarms(scores)) <= 3


def test_daily_profile_unused_on_first_day():
    # Dense noise inside one hourly bin: the bin's mean follows the last few values,
    # so using it as a profile on the first day would flag ordinary noise.
    series = gaussian(200, seed=3)
    start = datetime(2024, 5, 1, 10, tzinfo=UTC)
    moments = [start + timedelta(seconds=index) for index in range(len(series))]
    scores = Detector(DetectorConfig(warmup_events=5)).score_series(series, moments)
    assert not any(feature.daily for score in scores for feature in score.features)
    assert alarms(scores) == []


@pytest.mark.parametrize(
    ("spikes", "expected_alarms"),
    [
        # A repeat of the same spike inside the 50-event interval is suppressed.
        ({120: 20.0, 130: 20.0}, [120]),
        # A larger spike inside the interval still alarms and starts a new interval.
        ({120: 20.0, 130: 40.0, 140: 20.0}, [120, 130]),
        # After the interval the same spike alarms again.
        ({120: 20.0, 180: 20.0}, [120, 180]),
    ],
    ids=["repeat", "larger", "after-interval"],
)
def test_suppression_interval(spikes, expected_alarms):
    series = gaussian(250)
    for index, value in spikes.items():
        series[index] = {"v": value}
    scores = Detector(DetectorConfig(refractory_events=50)).score_series(series)
    assert alarms(scores) == expected_alarms


def test_suppression_is_per_feature():
    rng = random.Random(8)
    series = [{"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)} for _ in range(200)]
    series[120] = {"a": 20.0, "b": 0.0}
    series[125] = {"a": 0.0, "b": 20.0}
    series[130] = {"a": 20.0, "b": 0.0}
    scores = Detector().score_series(series)
    assert alarms(scores) == [120, 125]
    assert scores[130].suppressed


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


def test_state_size_is_fixed():
    series = daily_cycle(days=3)
    detector = Detector()
    state: dict[str, FeatureState] = {}
    for features, moment in zip(series, times(len(series)), strict=True):
        _, state = detector.score(state, features, moment)
    (row,) = encode_state(state)
    assert len(row[8]) == 24
    assert len(row[9]) == 24


def test_state_encoding_round_trip():
    series = daily_cycle(days=2)
    state = {"b": FeatureState(1, -2.0, 0.0)}
    detector = Detector()
    for features, moment in zip(series, times(len(series)), strict=True):
        _, state = detector.score(state, {"a": features["v"]}, moment)
    assert decode_state(encode_state(state)) == state
    assert decode_state(None) == {}


def test_score_leaves_input_state_unchanged():
    series = daily_cycle(days=2)
    detector = Detector()
    state: dict[str, FeatureState] = {}
    for features, moment in zip(series, times(len(series)), strict=True):
        before = dict(state)
        encoded = encode_state(state)
        _, new_state = detector.score(state, features, moment)
        assert state == before
        assert encode_state(state) == encoded
        state = new_state
    assert state["v"].count == len(series)


def test_state_decodes_four_field_rows():
    assert decode_state([("a", 3, 1.5, 0.25)]) == {"a": FeatureState(3, 1.5, 0.25)}


def test_score_series_rejects_wrong_number_of_times():
    with pytest.raises(ValueError, match="event_times has 1 items for 2 events"):
        Detector().score_series([{"v": 1.0}, {"v": 2.0}], [START])


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
        ({"refractory_events": -1}, "refractory_events=-1"),
        ({"season_bins": -1}, "season_bins=-1"),
        ({"season_half_life_visits": 0.0}, "season_half_life_visits=0.0"),
        ({"tail_quantile": 1.0}, "tail_quantile=1.0"),
        ({"tail_step": -0.1}, "tail_step=-0.1"),
    ],
)
def test_config_rejects_invalid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DetectorConfig(**kwargs)


NAB_FILES = (
    "artificialNoAnomaly/art_daily_no_noise.csv",
    "artificialNoAnomaly/art_daily_perfect_square_wave.csv",
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "artificialWithAnomaly/art_daily_flatmiddle.csv",
    "artificialWithAnomaly/art_load_balancer_spikes.csv",
    "realKnownCause/rogue_agent_key_updown.csv",
    "realKnownCause/ec2_request_latency_system_failure.csv",
)


@pytest.mark.skipif(not NAB_ROOT.is_dir(), reason="the NAB corpus is not checked out next to main")
def test_nab_daily_and_spiky_files():
    windows = load_windows(NAB_ROOT / "labels" / "combined_windows.json")
    detector = Detector()
    detections = []
    for key in NAB_FILES:
        with (NAB_ROOT / "data" / key).open(encoding="utf-8") as stream:
            reader = csv.reader(stream)
            next(reader)
            rows = [(parse_nab_time(row[0]), float(row[1])) for row in reader if row]
        scores = detector.score_series(
            [{"value": value} for _, value in rows], [moment for moment, _ in rows]
        )
        detections += [
            (key, moment)
            for (moment, _), score in zip(rows, scores, strict=True)
            if score.is_anomaly
        ]
    evaluation = evaluate_windows(windows, NAB_FILES, detections)
    # Measured with the defaults: all 8 windows, 50 of 64 detections outside.
    assert evaluation.windows_detected == evaluation.windows == 8
    assert evaluation.detections_outside <= 70


def mixed_series(count, seed):
    """Two features, `b` missing from every seventh event, with spikes in both."""
    rng = random.Random(seed)
    series = []
    for index in range(count):
        features = {"a": rng.gauss(10.0, 1.0)}
        if index % 7:
            features["b"] = rng.gauss(100.0, 5.0)
        series.append(features)
    series[150] = {"a": 30.0, "b": 100.0}
    # A repeat inside the suppression interval: state must carry it across chunks.
    series[160] = {"a": 30.0, "b": 100.0}
    series[400] = {"a": 10.0, "b": 200.0}
    return series


@pytest.mark.parametrize("chunk", [1, 7, 120])
def test_score_events_in_chunks_equals_one_pass(chunk):
    series = mixed_series(3 * EVENTS_PER_DAY, seed=12)
    moments = [to_micros(moment) for moment in times(len(series))]
    detector = Detector()
    whole, whole_state = detector.score_events({}, series, moments)
    pieces = []
    state: dict[str, FeatureState] = {}
    for start in range(0, len(series), chunk):
        part, state = detector.score_events(
            decode_state(encode_state(state)),
            series[start : start + chunk],
            moments[start : start + chunk],
        )
        pieces += [part.score(index) for index in range(len(part))]
    assert pieces == [whole.score(index) for index in range(len(whole))]
    assert state == whole_state
    assert whole.anomalies[150]
    assert whole.suppressed[160]


def test_score_events_untracked_feature_changes_nothing_else():
    series = mixed_series(500, seed=13)
    # Event 1 brings `b` and `c`; with room for two features `c` is left out.
    with_extra = [series[0], {**series[1], "c": 1.0}, *series[2:]]
    detector = Detector(DetectorConfig(max_features=2))
    plain, plain_state = detector.score_events({}, series, [None] * len(series))
    extra, extra_state = detector.score_events({}, with_extra, [None] * len(series))
    assert extra.anomaly_scores == plain.anomaly_scores
    assert extra.anomalies == plain.anomalies
    assert extra.untracked_features == 1
    assert extra.score(1).untracked_features == 1
    assert extra_state == plain_state


def test_score_events_rejects_wrong_number_of_times():
    with pytest.raises(ValueError, match="event_times has 1 items for 2 events"):
        Detector().score_events({}, [{"v": 1.0}, {"v": 2.0}], [None])


def test_score_series_naive_time_is_utc():
    series = daily_cycle(days=2)
    aware = Detector().score_series(series, times(len(series)))
    naive = Detector().score_series(
        series, [moment.replace(tzinfo=None) for moment in times(len(series))]
    )
    assert naive == aware
