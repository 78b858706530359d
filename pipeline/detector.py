"""Per-entity streaming anomaly detector (robust exponentially weighted z-scores), without Beam.

Method
------
Each entity keeps, per feature, a small fixed-size state (`FeatureState`). For a new
value ``x`` the detector first scores it against the state *before* the update, then
updates the state. Every step depends only on the entity's earlier events in event-time
order, so the same events give the same scores whatever order they arrived in.

1. Level baseline. A count ``n``, an exponentially weighted mean ``m`` and variance
   ``v`` with a Huber-type update, and a slow mean absolute deviation ``d_slow``::

       s_level = max(sqrt(v), d_slow, min_std, relative_min_std * |m|)
       z_level = |x - m| / s_level

   ``d_slow`` has a half-life ten times that of ``v`` and is updated without clipping,
   so it remembers how far values usually stray, spikes included. A series that sits
   at 0 between frequent spikes therefore keeps a realistic scale instead of collapsing
   to ``min_std`` and scoring every spike in the millions.

2. Daily profile, when the caller passes ``event_time``. The UTC day is cut into
   ``season_bins`` bins. Each bin keeps an exponentially weighted mean ``p_b`` of the
   values seen in it, and one residual variance ``r`` tracks ``x - p_b``::

       z_daily = |x - p_b| / max(sqrt(r), min_std, relative_min_std * |p_b|)

   The detector uses ``z_daily`` in place of ``z_level`` once the bin has two values,
   the residual variance has ``warmup_events`` values, the event falls on a later UTC
   day than the feature's first timed event, and ``r < v``. The profile then
   predicts the value better than the level does, which is what a daily cycle looks
   like. On data without a daily cycle ``r`` is usually above ``v``, so the level
   baseline stays in use.

3. Tail calibration. A Gaussian feature exceeds ``q0``, the two-sided
   ``tail_quantile`` point of the normal distribution (2.58 for 0.99), on 1% of events.
   Each feature tracks the same quantile ``q`` of its own z-scores with a
   stochastic-approximation update in log space, so that it can climb orders of
   magnitude::

       ln q += tail_step * (1[z > q] - (1 - tail_quantile)),   q kept >= q0
       z_cal = z * q0 / q

   At equilibrium ``z > q`` on 1% of events. On Gaussian data ``q`` stays near ``q0``
   and nothing changes. On heavy-tailed data, where large z-scores are routine, ``q``
   rises by about 5% per exceedance, and only deviations that are large for that
   feature score high. Without exceedances ``q`` decays by a factor 2 in about 1,400
   events.

4. Combination and threshold. The largest calibrated z-score over the ``k`` features
   with ``warmup_events`` values is corrected for the number of features tested. With
   the Gaussian tail ``P(|Z| > z) ~ exp(-z^2 / 2)``, taking the maximum of ``k`` tests
   multiplies the tail by ``k``, the same as subtracting ``2 ln k`` from ``z^2``::

       z_eff = sqrt(max(0, max_i(z_cal_i)^2 - 2 ln k))
       anomaly_score = z_eff^2 / (z_eff^2 + z0^2)        with z0 = score_scale_z

   so the score is in [0, 1), 0.5 at ``z_eff = z0`` and grows with the deviation. Each
   feature's own score ``z_cal_i^2 / (z_cal_i^2 + z0^2)`` is reported for triage.

5. Alert suppression. The event is an anomaly when ``anomaly_score >= threshold``,
   except that a feature which triggered an anomaly is quiet for the next
   ``refractory_events`` events of the entity. During that interval it can trigger
   another anomaly only with a larger ``z_cal`` than the one that started the
   interval. Another feature of the same entity can still trigger one. A suppressed
   event keeps its ``anomaly_score`` and has ``Score.suppressed`` set.

Update of the level baseline (the incremental form of an exponentially weighted mean
and variance)::

    a  = max(alpha, 1 / (n + 1))                   alpha = 1 - 2^(-1 / half_life_events)
    d  = x - m, clipped to [-clip_z * s_level, clip_z * s_level] once the feature is warm
    m' = m + a * d
    v' = (1 - a) * (v + a * d^2)

``1 / (n + 1)`` makes the first values an ordinary running mean, so the warm-up does not
depend on the initial value. Clipping the deviation keeps one spike from inflating the
baseline and masking the next one, yet a lasting level shift still moves the mean by
up to ``a * clip_z * s`` and widens ``s`` on every event, so the baseline catches up
with drift within a few half-lives. The profile bins and ``r`` are updated the same
way, each bin with ``season_half_life_visits`` counted in values seen in that bin.

State is 7 numbers per feature, plus ``2 * season_bins + 3`` once timed events arrive
(58 in all with the default 24 bins), for at most ``max_features`` features per entity.
The update is O(features + season_bins) per event, because the bins are copied.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any

DETECTOR_NAME = "ewma-robust-z/2"

SECONDS_PER_DAY = 86_400

# The half-life of the slow mean absolute deviation, as a multiple of half_life_events.
SPREAD_HALF_LIFE_FACTOR = 10.0


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings; see the module docstring for the method and the defaults."""

    threshold: float = 0.8
    warmup_events: int = 20
    half_life_events: float = 50.0
    clip_z: float = 3.0
    score_scale_z: float = 2.0
    min_std: float = 1e-6
    relative_min_std: float = 1e-3
    max_features: int = 128
    refractory_events: int = 50
    season_bins: int = 24
    season_half_life_visits: float = 3.0
    tail_quantile: float = 0.99
    tail_step: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold} is out of range; use a value in (0, 1]")
        if self.warmup_events < 2:
            raise ValueError(
                f"warmup_events={self.warmup_events} is too small; use at least 2, because "
                "a standard deviation needs two values"
            )
        for name in (
            "half_life_events",
            "clip_z",
            "score_scale_z",
            "min_std",
            "season_half_life_visits",
            "tail_step",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value} is invalid; use a positive finite number")
        if self.relative_min_std < 0:
            raise ValueError(f"relative_min_std={self.relative_min_std} must not be negative")
        if self.max_features < 1:
            raise ValueError(f"max_features={self.max_features} must be at least 1")
        if self.refractory_events < 0:
            raise ValueError(
                f"refractory_events={self.refractory_events} must not be negative; "
                "use 0 to report every event over the threshold"
            )
        if not 0 <= self.season_bins <= SECONDS_PER_DAY:
            raise ValueError(
                f"season_bins={self.season_bins} is out of range; use 0 (no daily profile) "
                f"up to {SECONDS_PER_DAY}"
            )
        if not 0.0 <= self.tail_quantile < 1.0:
            raise ValueError(
                f"tail_quantile={self.tail_quantile} is out of range; use a value in [0, 1), "
                "0 to turn the tail calibration off"
            )

    @property
    def alpha(self) -> float:
        """Weight of a new value once warm: 1 - 2^(-1 / half_life_events)."""
        return 1.0 - math.pow(2.0, -1.0 / self.half_life_events)

    @property
    def spread_alpha(self) -> float:
        """Weight of a new absolute deviation in the slow mean absolute deviation."""
        return 1.0 - math.pow(2.0, -1.0 / (SPREAD_HALF_LIFE_FACTOR * self.half_life_events))

    @property
    def season_alpha(self) -> float:
        """Weight of a new value in its profile bin: 1 - 2^(-1 / season_half_life_visits)."""
        return 1.0 - math.pow(2.0, -1.0 / self.season_half_life_visits)

    @property
    def gaussian_tail_z(self) -> float:
        """The two-sided `tail_quantile` point of |Z| for a standard normal Z (0 when off)."""
        if self.tail_quantile == 0.0:
            return 0.0
        return NormalDist().inv_cdf(0.5 + self.tail_quantile / 2.0)

    def z_at_threshold(self) -> float:
        """Return the effective z-score at which the score reaches the threshold."""
        if self.threshold >= 1.0:
            return math.inf
        return self.score_scale_z * math.sqrt(self.threshold / (1.0 - self.threshold))


@dataclass(frozen=True)
class FeatureState:
    """One feature's baseline, daily profile, tail quantile and suppression interval.

    `count`, `mean`, `var`: the level baseline. `spread`: the slow mean absolute deviation
    from `mean`. `tail_z`: the tracked `tail_quantile` of the feature's z-scores, 0 until
    the feature is warm. `quiet_events`, `alarm_z`: events left in the suppression
    interval and the calibrated z-score that started it. `season_mean`, `season_count`:
    the profile's per-bin means and values seen per bin, empty until a timed
    event arrives. `season_var`, `season_residuals`: the profile's residual variance and
    the number of residuals it contains. `season_first_day`: the UTC day number of the
    first timed event, -1 before it.
    """

    count: int
    mean: float
    var: float
    spread: float = 0.0
    tail_z: float = 0.0
    quiet_events: int = 0
    alarm_z: float = 0.0
    season_mean: tuple[float, ...] = ()
    season_count: tuple[int, ...] = ()
    season_var: float = 0.0
    season_residuals: int = 0
    season_first_day: int = -1


EntityState = Mapping[str, FeatureState]
EncodedState = tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class FeatureScore:
    """One feature's value against its baseline before the update.

    `mean` and `std` are the expected value and the scale the z-score used: the level
    baseline, or the daily profile's bin mean and residual scale when `daily` is set.
    `z` is before the tail calibration and `score` after it.
    """

    feature: str
    value: float
    mean: float
    std: float
    count: int
    z: float
    score: float
    daily: bool = False


@dataclass(frozen=True)
class Score:
    """The detector's verdict on one event.

    `features` lists every feature of the event that has a baseline, in name order.
    `untracked_features` counts new features ignored because the entity's state already
    contains `max_features` features. `suppressed` is set when the score reached the
    threshold but every feature that reached it was in its suppression interval.
    """

    anomaly_score: float
    is_anomaly: bool
    features: tuple[FeatureScore, ...]
    untracked_features: int = 0
    suppressed: bool = False


class Detector:
    """Scores events against per-entity state and returns the updated state.

    The detector stores only its configuration, and the caller keeps each entity's state.
    One detector therefore serves every entity, in a Beam stateful DoFn or in a test.
    """

    name = DETECTOR_NAME

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        config = self.config
        # Constants derived from the frozen config, computed once because score runs per event.
        self._tail_z0 = config.gaussian_tail_z
        self._alpha = config.alpha
        self._spread_alpha = config.spread_alpha
        self._season_alpha = config.season_alpha
        # exp(tail_step * (exceeded - (1 - tail_quantile))) for exceeded = 1 and exceeded = 0.
        tail_miss = 1.0 - config.tail_quantile
        self._tail_up = math.exp(config.tail_step * (1.0 - tail_miss))
        self._tail_down = math.exp(config.tail_step * (0.0 - tail_miss))

    def score(
        self,
        state: EntityState,
        features: Mapping[str, float],
        event_time: datetime | None = None,
    ) -> tuple[Score, dict[str, FeatureState]]:
        """Score one event's features against `state`; return the score and the new state.

        `event_time` enables the daily profile. Pass it for every event of an entity or
        for none, because the profile only learns from timed events.
        """
        config = self.config
        new_state = dict(state)
        season_bin = self._season_bin(event_time)
        day = _utc_day(event_time)
        feature_scores: list[FeatureScore] = []
        warm: dict[str, float] = {}
        untracked = 0

        for name in sorted(features):
            value = float(features[name])
            previous = state.get(name)
            if previous is None:
                if len(new_state) >= config.max_features:
                    untracked += 1
                    continue
                first = _new_feature(value)
                new_state[name] = self._update(
                    first, value, season_bin, day, z=None, level_scale=self._level_scale(first)
                )
                continue

            z, expected, scale, daily, level_scale = self._deviation(
                previous, value, season_bin, day
            )
            feature_score = 0.0
            if previous.count >= config.warmup_events:
                z_cal = self._calibrate(previous, z)
                warm[name] = z_cal
                feature_score = self._squash(z_cal)
            feature_scores.append(
                FeatureScore(
                    feature=name,
                    value=value,
                    mean=expected,
                    std=scale,
                    count=previous.count,
                    z=z,
                    score=feature_score,
                    daily=daily,
                )
            )
            new_state[name] = self._update(
                previous, value, season_bin, day, z=z, level_scale=level_scale
            )

        anomaly_score = self._combine(list(warm.values()))
        is_anomaly, suppressed = self._decide(state, new_state, warm, anomaly_score)
        return (
            Score(
                anomaly_score=anomaly_score,
                is_anomaly=is_anomaly,
                features=tuple(feature_scores),
                untracked_features=untracked,
                suppressed=suppressed,
            ),
            new_state,
        )

    def score_series(
        self,
        events: Iterable[Mapping[str, float]],
        event_times: Sequence[datetime] | None = None,
    ) -> list[Score]:
        """Score one entity's events in event-time order, starting from empty state.

        `event_times`, when given, has one time per event and enables the daily profile.
        """
        events = list(events)
        if event_times is not None and len(event_times) != len(events):
            raise ValueError(
                f"event_times has {len(event_times)} items for {len(events)} events; "
                "pass one time per event or none"
            )
        state: dict[str, FeatureState] = {}
        scores: list[Score] = []
        for index, features in enumerate(events):
            moment = event_times[index] if event_times is not None else None
            score, state = self.score(state, features, moment)
            scores.append(score)
        return scores

    def _season_bin(self, event_time: datetime | None) -> int | None:
        # NOTE: bins are in UTC, so a cycle that follows local time with daylight saving
        # moves by one bin twice a year until the bins relearn it.
        bins = self.config.season_bins
        if event_time is None or bins == 0:
            return None
        if event_time.tzinfo is not None:
            event_time = event_time.astimezone(UTC)
        seconds = event_time.hour * 3600 + event_time.minute * 60 + event_time.second
        return seconds * bins // SECONDS_PER_DAY

    def _level_scale(self, feature: FeatureState) -> float:
        config = self.config
        return max(
            math.sqrt(feature.var),
            feature.spread,
            config.min_std,
            config.relative_min_std * abs(feature.mean),
        )

    def _daily_scale(self, feature: FeatureState, season_bin: int) -> float:
        config = self.config
        return max(
            math.sqrt(feature.season_var),
            config.min_std,
            config.relative_min_std * abs(feature.season_mean[season_bin]),
        )

    def _deviation(
        self, feature: FeatureState, value: float, season_bin: int | None, day: int | None
    ) -> tuple[float, float, float, bool, float]:
        """Return (z, expected, scale, daily, level_scale) of `value` before the update.

        `expected` and `scale` are the level baseline's, or the profile bin's when `daily`
        is set. `level_scale` is always the level baseline's, which the update needs.
        """
        scale = self._level_scale(feature)
        level = (abs(value - feature.mean) / scale, feature.mean, scale, False, scale)
        if season_bin is None or day is None or not self._profile_ready(feature, season_bin):
            return level
        # Within the first UTC day a bin holds only that day's recent values, a
        # short moving mean rather than a daily profile, whose small residuals
        # would flag ordinary noise.
        if day <= feature.season_first_day:
            return level
        if feature.season_var >= feature.var:
            return level
        expected = feature.season_mean[season_bin]
        daily_scale = self._daily_scale(feature, season_bin)
        return abs(value - expected) / daily_scale, expected, daily_scale, True, scale

    def _profile_ready(self, feature: FeatureState, season_bin: int) -> bool:
        return (
            len(feature.season_count) == self.config.season_bins
            and feature.season_count[season_bin] >= 2
            and feature.season_residuals >= self.config.warmup_events
        )

    def _calibrate(self, feature: FeatureState, z: float) -> float:
        z0 = self._tail_z0
        if z0 == 0.0 or feature.tail_z <= z0:
            return z
        return z * z0 / feature.tail_z

    def _update(
        self,
        feature: FeatureState,
        value: float,
        season_bin: int | None,
        day: int | None,
        *,
        z: float | None,
        level_scale: float,
    ) -> FeatureState:
        """Return `feature` after `value`.

        `z` is the value's z-score before calibration, None for the feature's first value.
        `level_scale` is the level baseline's scale before the update.
        """
        # `b if b > a else a` is max(a, b) and `b if b < a else a` is min(a, b), with the
        # same result for ties and NaN but without a function call, because this runs
        # per feature per event.
        config = self.config
        count = feature.count
        warm = count >= config.warmup_events
        first_weight = 1.0 / (count + 1)

        alpha = self._alpha
        weight = first_weight if first_weight > alpha else alpha
        step = value - feature.mean
        if warm:
            limit = config.clip_z * level_scale
            step = -limit if -limit > step else step
            step = limit if limit < step else step
        mean = feature.mean + weight * step
        var = (1.0 - weight) * (feature.var + weight * step * step)

        spread = feature.spread
        if z is not None:
            spread_alpha = self._spread_alpha
            spread_weight = first_weight if first_weight > spread_alpha else spread_alpha
            spread += spread_weight * (abs(value - feature.mean) - spread)

        tail_z = feature.tail_z
        z0 = self._tail_z0
        if warm and z is not None and z0 > 0.0:
            tail_z = z0 if z0 > tail_z else tail_z
            tail_z *= self._tail_up if z > tail_z else self._tail_down
            tail_z = z0 if z0 > tail_z else tail_z

        season_mean = feature.season_mean
        season_count = feature.season_count
        season_var = feature.season_var
        season_residuals = feature.season_residuals
        season_first_day = feature.season_first_day
        if season_bin is not None:
            if season_first_day < 0 and day is not None:
                season_first_day = day
            season_mean, season_count, season_var, season_residuals = self._update_profile(
                feature, value, season_bin
            )

        quiet_events = feature.quiet_events - 1
        return FeatureState(
            count=count + 1,
            mean=mean,
            var=var,
            spread=spread,
            tail_z=tail_z,
            quiet_events=quiet_events if quiet_events > 0 else 0,
            alarm_z=feature.alarm_z,
            season_mean=season_mean,
            season_count=season_count,
            season_var=season_var,
            season_residuals=season_residuals,
            season_first_day=season_first_day,
        )

    def _update_profile(
        self, feature: FeatureState, value: float, season_bin: int
    ) -> tuple[tuple[float, ...], tuple[int, ...], float, int]:
        """Return the profile fields of `feature` after `value` in `season_bin`.

        The result is (season_mean, season_count, season_var, season_residuals).
        """
        config = self.config
        bins = config.season_bins
        means = list(feature.season_mean) if feature.season_mean else [0.0] * bins
        counts = list(feature.season_count) if feature.season_count else [0] * bins
        bin_mean = means[season_bin]
        bin_count = counts[season_bin]
        season_var = feature.season_var
        residuals = feature.season_residuals
        # Both clips below use the bin's scale before the update, so it is computed once.
        # The conditional expressions are max and min written out, as in _update.
        clipped = bin_count > 0 and residuals >= config.warmup_events
        limit = config.clip_z * self._daily_scale(feature, season_bin) if clipped else 0.0

        if bin_count > 0:
            residual = value - bin_mean
            alpha = self._alpha
            first_weight = 1.0 / (residuals + 1)
            weight = first_weight if first_weight > alpha else alpha
            if clipped:
                residual = -limit if -limit > residual else residual
                residual = limit if limit < residual else residual
            season_var = (1.0 - weight) * (season_var + weight * residual * residual)
            residuals += 1

        season_alpha = self._season_alpha
        first_bin_weight = 1.0 / (bin_count + 1)
        bin_weight = first_bin_weight if first_bin_weight > season_alpha else season_alpha
        bin_step = value - bin_mean
        if clipped and bin_count >= 2 and len(counts) == bins:
            # Clipped like the level once the profile is ready (see _profile_ready), so one
            # outlier does not distort its bin for days.
            bin_step = -limit if -limit > bin_step else bin_step
            bin_step = limit if limit < bin_step else bin_step
        means[season_bin] = bin_mean + bin_weight * bin_step
        counts[season_bin] = bin_count + 1
        return tuple(means), tuple(counts), season_var, residuals

    def _decide(
        self,
        state: EntityState,
        new_state: dict[str, FeatureState],
        warm: Mapping[str, float],
        anomaly_score: float,
    ) -> tuple[bool, bool]:
        """Apply the threshold and the suppression; start intervals in `new_state`.

        Returns (is_anomaly, suppressed).
        """
        config = self.config
        if anomaly_score < config.threshold:
            return False, False
        # A feature triggers when its own calibrated z-score, corrected for the k features
        # tested, reaches the threshold, since the score is that of the largest z-score.
        k = len(warm)
        triggering = {
            name: z_cal
            for name, z_cal in warm.items()
            if self._combine([z_cal], k) >= config.threshold
        }
        new_alarms = {
            name: z_cal
            for name, z_cal in triggering.items()
            if state[name].quiet_events == 0 or z_cal > state[name].alarm_z
        }
        if not new_alarms:
            return False, True
        if config.refractory_events > 0:
            for name, z_cal in new_alarms.items():
                new_state[name] = replace(
                    new_state[name], quiet_events=config.refractory_events, alarm_z=z_cal
                )
        return True, False

    def _squash(self, z: float) -> float:
        if math.isinf(z):
            return 1.0
        z0 = self.config.score_scale_z
        return z * z / (z * z + z0 * z0)

    def _combine(self, z_scores: list[float], tested: int | None = None) -> float:
        """Score the largest of `z_scores`, corrected for `tested` features (default: all)."""
        if not z_scores:
            return 0.0
        largest = max(z_scores)
        if math.isinf(largest):
            return 1.0
        count = len(z_scores) if tested is None else tested
        adjusted_sq = max(0.0, largest * largest - 2.0 * math.log(count))
        return self._squash(math.sqrt(adjusted_sq))


def _utc_day(event_time: datetime | None) -> int | None:
    """Return the number of whole UTC days since the POSIX epoch, or None without a time."""
    if event_time is None:
        return None
    return int(event_time.timestamp() // SECONDS_PER_DAY)


def _new_feature(value: float) -> FeatureState:
    """Return the state of a feature before its first value."""
    return FeatureState(count=0, mean=value, var=0.0)


def encode_state(state: EntityState) -> EncodedState:
    """Encode state as a tuple of (feature, *FeatureState fields), the compact form Beam keeps."""
    return tuple(
        (
            name,
            feature.count,
            feature.mean,
            feature.var,
            feature.spread,
            feature.tail_z,
            feature.quiet_events,
            feature.alarm_z,
            feature.season_mean,
            feature.season_count,
            feature.season_var,
            feature.season_residuals,
            feature.season_first_day,
        )
        for name, feature in sorted(state.items())
    )


def decode_state(encoded: Iterable[Sequence[Any]] | None) -> dict[str, FeatureState]:
    """Decode the output of encode_state; None gives empty state.

    A row of only (feature, count, mean, var), the encoding before the other fields
    existed, decodes with those fields at their initial values.
    """
    if encoded is None:
        return {}
    return {row[0]: FeatureState(*row[1:]) for row in encoded}
