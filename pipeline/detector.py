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
The update is O(features) per event. `Detector.score_events` copies the bins once per
call, so scoring a run of events in one call costs less than one call per event.
"""

# The scoring loop writes max and min as comparisons, because a call per value costs more.
# ruff: noqa: PLR1730

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist
from typing import Any

from pipeline.records import to_micros

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


# Microseconds, the unit of the event times that Detector.score_events takes.
MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = SECONDS_PER_DAY * MICROS_PER_SECOND

# A feature's baseline at one event: (value, expected, scale, count, z, daily), the
# fields of FeatureScore before the tail calibration.
_Baseline = tuple[float, float, float, int, float, bool]


# A feature's state after a run, without the suppression fields: the FeatureState fields
# count, mean, var, spread, tail_z, season_mean, season_count, season_var,
# season_residuals and season_first_day, in that order.
_Final = tuple[int, float, float, float, float, tuple[float, ...], tuple[int, ...], float, int, int]


class _Column:
    """One feature's values in a run of events, and what the detector made of each.

    `events` and `values` list the feature's occurrences in event order (`events` is a
    range when the feature occurs in every event). For each occurrence `baselines`
    contains the baseline before the update (None for the feature's first value ever)
    and `calibrated` the calibrated z-score (None while the feature is not warm).
    `final` is the feature's state after the run, without the suppression fields,
    which depend on the other features.
    """

    __slots__ = ("baselines", "calibrated", "events", "final", "initial", "values")

    def __init__(self, initial: FeatureState | None, events: list[int] | range) -> None:
        self.initial = initial
        self.events = events
        self.values: list[float] = []
        self.baselines: list[_Baseline | None] = []
        self.calibrated: list[float | None] = []
        self.final: _Final | None = None


class SeriesScores:
    """The detector's verdicts on a run of one entity's events, one item per event.

    `anomaly_scores`, `anomalies` and `suppressed` are per event, in the order scored.
    `score(index)` builds the full Score of one event, baseline included, which the
    pipeline needs only for the anomalies.
    """

    __slots__ = (
        "_columns",
        "_detector",
        "_features",
        "_untracked",
        "anomalies",
        "anomaly_scores",
        "suppressed",
    )

    def __init__(
        self,
        detector: Detector,
        features: Sequence[Mapping[str, float]],
        columns: dict[str, _Column],
        untracked: dict[int, int],
    ) -> None:
        count = len(features)
        self._detector = detector
        self._features = features
        self._columns = columns
        self._untracked = untracked
        self.anomaly_scores: list[float] = [0.0] * count
        self.anomalies: list[bool] = [False] * count
        self.suppressed: list[bool] = [False] * count

    def __len__(self) -> int:
        return len(self.anomaly_scores)

    @property
    def untracked_features(self) -> int:
        """New features ignored over all events, because the state was full."""
        return sum(self._untracked.values())

    def calibrated_z(self, index: int) -> dict[str, float]:
        """Return the calibrated z-score of each warm feature of event `index`."""
        warm: dict[str, float] = {}
        for name in self._features[index]:
            column = self._columns.get(name)
            if column is None:
                continue
            z_cal = column.calibrated[bisect_left(column.events, index)]
            if z_cal is not None:
                warm[name] = z_cal
        return warm

    def score(self, index: int) -> Score:
        """Return the Score of event `index`, with each feature's baseline in name order."""
        features: list[FeatureScore] = []
        squash = self._detector._squash
        for name in sorted(self._features[index]):
            column = self._columns.get(name)
            if column is None:
                continue
            occurrence = bisect_left(column.events, index)
            baseline = column.baselines[occurrence]
            if baseline is None:
                continue
            value, expected, scale, count, z, daily = baseline
            z_cal = column.calibrated[occurrence]
            features.append(
                FeatureScore(
                    feature=name,
                    value=value,
                    mean=expected,
                    std=scale,
                    count=count,
                    z=z,
                    score=0.0 if z_cal is None else squash(z_cal),
                    daily=daily,
                )
            )
        return Score(
            anomaly_score=self.anomaly_scores[index],
            is_anomaly=self.anomalies[index],
            features=tuple(features),
            untracked_features=self._untracked.get(index, 0),
            suppressed=self.suppressed[index],
        )


class Detector:
    """Scores events against per-entity state and returns the updated state.

    The detector stores only its configuration, and the caller keeps each entity's state.
    One detector therefore serves every entity, in a Beam stateful DoFn or in a test.

    `score_events` scores a run of one entity's events in one pass, feature by feature:
    a feature's z-scores depend only on its own history, so each feature's values are
    scored in a tight loop, and only the combination and the suppression look across
    features. Scoring a run in one call or in pieces gives the same scores and state.
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
        for none, because the profile only learns from timed events. A naive datetime
        is taken as UTC.
        """
        moment = None if event_time is None else to_micros(event_time)
        scores, new_state = self.score_events(state, [features], [moment])
        return scores.score(0), new_state

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
        moments: list[int | None] = (
            [to_micros(moment) for moment in event_times]
            if event_times is not None
            else [None] * len(events)
        )
        scores, _ = self.score_events({}, events, moments)
        return [scores.score(index) for index in range(len(scores))]

    def score_events(
        self,
        state: EntityState,
        features: Sequence[Mapping[str, float]],
        event_times: Sequence[int | None],
    ) -> tuple[SeriesScores, dict[str, FeatureState]]:
        """Score one entity's events, already in event-time order, starting from `state`.

        `features` has each event's features, and `event_times` each event's time in
        microseconds since the Unix epoch, or None for an event without a time. Returns
        the per-event scores and the state after the last event. `state` is left
        unchanged.
        """
        if len(event_times) != len(features):
            raise ValueError(
                f"event_times has {len(event_times)} items for {len(features)} events; "
                "pass one time (or None) per event"
            )
        columns, untracked = self._columns(state, features)
        scores = SeriesScores(self, features, columns, untracked)
        season_bins, days = self._times(event_times)
        best = [0.0] * len(features)
        tested = [0] * len(features)
        for column in columns.values():
            self._score_column(column, season_bins, days, best, tested)
        quiet, alarm_z = self._decide_all(state, features, columns, scores, best, tested)

        new_state = dict(state)
        for name, column in columns.items():
            final = column.final
            assert final is not None  # _score_column sets it
            new_state[name] = FeatureState(
                final[0],
                final[1],
                final[2],
                final[3],
                final[4],
                quiet.get(name, 0),
                alarm_z.get(name, 0.0),
                final[5],
                final[6],
                final[7],
                final[8],
                final[9],
            )
        return scores, new_state

    def _columns(
        self, state: EntityState, events: Sequence[Mapping[str, float]]
    ) -> tuple[dict[str, _Column], dict[int, int]]:
        """Split the events into one column per tracked feature; count untracked ones.

        A new feature is tracked while the entity has fewer than `max_features`. When one
        event brings several new features, they are admitted in name order.
        """
        uniform = self._uniform_columns(state, events)
        if uniform is not None:
            return uniform, {}
        columns: dict[str, _Column] = {}
        untracked: dict[int, int] = {}
        tracked = len(state)
        capacity = self.config.max_features
        for index, features in enumerate(events):
            if columns.keys() >= features.keys():
                for name, value in features.items():
                    column = columns[name]
                    column.events.append(index)  # type: ignore[union-attr]
                    column.values.append(float(value))
                continue
            for name in sorted(features):
                known = columns.get(name)
                if known is None:
                    previous = state.get(name)
                    if previous is None:
                        if tracked >= capacity:
                            untracked[index] = untracked.get(index, 0) + 1
                            continue
                        tracked += 1
                    known = columns[name] = _Column(previous, [])
                known.events.append(index)  # type: ignore[union-attr]
                known.values.append(float(features[name]))
        return columns, untracked

    def _uniform_columns(
        self, state: EntityState, events: Sequence[Mapping[str, float]]
    ) -> dict[str, _Column] | None:
        """Return the columns when every event has the same features and all fit, else None.

        This is the common case, and it needs one list per feature and no per-event
        bookkeeping.
        """
        if not events:
            return {}
        names = events[0].keys()
        if any(features.keys() != names for features in events):
            return None
        new_features = sum(1 for name in names if name not in state)
        if len(state) + new_features > self.config.max_features:
            return None
        positions = range(len(events))
        columns: dict[str, _Column] = {}
        for name in names:
            column = _Column(state.get(name), positions)
            column.values = [float(features[name]) for features in events]
            columns[name] = column
        return columns

    def _times(
        self, event_times: Sequence[int | None]
    ) -> tuple[list[int | None] | None, list[int | None]]:
        """Return each event's daily profile bin and UTC day number (None without time).

        The bins are None as a whole when the profile is off or no event has a time.
        """
        bins = self.config.season_bins
        if bins == 0 or all(micros is None for micros in event_times):
            return None, []
        season_bins: list[int | None] = []
        days: list[int | None] = []
        for micros in event_times:
            if micros is None:
                season_bins.append(None)
                days.append(None)
                continue
            # NOTE: bins are in UTC, so a cycle that follows local time with daylight
            # saving moves by one bin twice a year until the bins relearn it.
            seconds = micros // MICROS_PER_SECOND
            season_bins.append(seconds % SECONDS_PER_DAY * bins // SECONDS_PER_DAY)
            days.append(micros // MICROS_PER_DAY)
        return season_bins, days

    def _score_column(  # noqa: PLR0912, PLR0915 (one loop, kept flat for speed)
        self,
        column: _Column,
        season_bins: list[int | None] | None,
        days: list[int | None],
        best: list[float],
        tested: list[int],
    ) -> None:
        """Score one feature's values in order, then store its final state on the column.

        Fills the column's baselines and calibrated z-scores, and raises `best[i]` to
        the largest calibrated z-score of event i while counting its warm features in
        `tested[i]`. The arithmetic is that of the method in the module docstring.
        """
        config = self.config
        warmup = config.warmup_events
        clip_z = config.clip_z
        min_std = config.min_std
        relative_min_std = config.relative_min_std
        bins = config.season_bins
        alpha = self._alpha
        spread_alpha = self._spread_alpha
        season_alpha = self._season_alpha
        z0 = self._tail_z0
        tail_up = self._tail_up
        tail_down = self._tail_down
        sqrt = math.sqrt

        initial = column.initial
        first = initial is None
        if initial is None:
            initial = _new_feature(0.0)
        count = initial.count
        mean = initial.mean
        var = initial.var
        spread = initial.spread
        tail_z = initial.tail_z
        means = list(initial.season_mean) if initial.season_mean else None
        counts = list(initial.season_count) if initial.season_count else None
        season_var = initial.season_var
        residuals = initial.season_residuals
        first_day = initial.season_first_day
        # The profile can replace the level only when its bins match the configuration.
        profile_sized = counts is not None and len(counts) == bins

        add_baseline = column.baselines.append
        add_calibrated = column.calibrated.append
        # `if b > a: a = b` is a = max(a, b), and its mirror min, with the same result
        # for ties and NaN but without a function call, because this runs per feature
        # per event.
        for index, value in zip(column.events, column.values, strict=True):
            season_bin = None if season_bins is None else season_bins[index]
            if first:
                # The state before a feature's first value: that value as the mean.
                mean = value
            level_scale = sqrt(var)
            if spread > level_scale:
                level_scale = spread
            if min_std > level_scale:
                level_scale = min_std
            relative = relative_min_std * abs(mean)
            if relative > level_scale:
                level_scale = relative
            warm = count >= warmup

            z = 0.0
            if first:
                add_baseline(None)
                add_calibrated(None)
            else:
                z = abs(value - mean) / level_scale
                expected = mean
                scale = level_scale
                daily = False
                # The profile replaces the level once its bin has two values, it has
                # `warmup` residuals, the event is on a later UTC day than the first
                # timed one, and it predicts better than the level does. Within the
                # first day a bin holds only that day's recent values, a short moving
                # mean whose small residuals would flag ordinary noise.
                if (
                    profile_sized
                    and season_bin is not None
                    and counts[season_bin] >= 2  # type: ignore[index]
                    and residuals >= warmup
                    and season_var < var
                    and days[index] > first_day  # type: ignore[operator]
                ):
                    expected = means[season_bin]  # type: ignore[index]
                    scale = sqrt(season_var)
                    if min_std > scale:
                        scale = min_std
                    relative = relative_min_std * abs(expected)
                    if relative > scale:
                        scale = relative
                    z = abs(value - expected) / scale
                    daily = True
                add_baseline((value, expected, scale, count, z, daily))
                if warm:
                    z_cal = z if z0 == 0.0 or tail_z <= z0 else z * z0 / tail_z
                    add_calibrated(z_cal)
                    if z_cal > best[index]:
                        best[index] = z_cal
                    tested[index] += 1
                else:
                    add_calibrated(None)

            # Level baseline: a Huber-type exponentially weighted mean and variance.
            first_weight = 1.0 / (count + 1)
            weight = first_weight if first_weight > alpha else alpha
            step = value - mean
            if warm:
                limit = clip_z * level_scale
                if -limit > step:
                    step = -limit
                if limit < step:
                    step = limit
            previous_mean = mean
            mean = mean + weight * step
            var = (1.0 - weight) * (var + weight * step * step)

            if not first:
                spread_weight = first_weight if first_weight > spread_alpha else spread_alpha
                spread += spread_weight * (abs(value - previous_mean) - spread)
                if warm and z0 > 0.0:
                    if z0 > tail_z:
                        tail_z = z0
                    tail_z *= tail_up if z > tail_z else tail_down
                    if z0 > tail_z:
                        tail_z = z0

            if season_bin is not None:
                day = days[index]
                if first_day < 0 and day is not None:
                    first_day = day
                if means is None or counts is None:
                    means = [0.0] * bins
                    counts = [0] * bins
                    profile_sized = True
                bin_mean = means[season_bin]
                bin_count = counts[season_bin]
                # Both clips use the bin's scale before the update.
                clipped = bin_count > 0 and residuals >= warmup
                season_limit = 0.0
                if clipped:
                    season_scale = sqrt(season_var)
                    if min_std > season_scale:
                        season_scale = min_std
                    relative = relative_min_std * abs(bin_mean)
                    if relative > season_scale:
                        season_scale = relative
                    season_limit = clip_z * season_scale
                if bin_count > 0:
                    residual = value - bin_mean
                    residual_weight = 1.0 / (residuals + 1)
                    if alpha > residual_weight:
                        residual_weight = alpha
                    if clipped:
                        if -season_limit > residual:
                            residual = -season_limit
                        if season_limit < residual:
                            residual = season_limit
                    season_var = (1.0 - residual_weight) * (
                        season_var + residual_weight * residual * residual
                    )
                    residuals += 1
                bin_weight = 1.0 / (bin_count + 1)
                if season_alpha > bin_weight:
                    bin_weight = season_alpha
                bin_step = value - bin_mean
                if clipped and bin_count >= 2 and profile_sized:
                    # Clipped like the level once the profile is ready, so one outlier
                    # does not distort its bin for days.
                    if -season_limit > bin_step:
                        bin_step = -season_limit
                    if season_limit < bin_step:
                        bin_step = season_limit
                means[season_bin] = bin_mean + bin_weight * bin_step
                counts[season_bin] = bin_count + 1

            count += 1
            first = False

        column.final = (
            count,
            mean,
            var,
            spread,
            tail_z,
            tuple(means) if means is not None else (),
            tuple(counts) if counts is not None else (),
            season_var,
            residuals,
            first_day,
        )

    def _decide_all(  # noqa: PLR0917 (the parts of one scoring pass)
        self,
        state: EntityState,
        events: Sequence[Mapping[str, float]],
        columns: dict[str, _Column],
        scores: SeriesScores,
        best: list[float],
        tested: list[int],
    ) -> tuple[dict[str, int], dict[str, float]]:
        """Combine each event's features, apply the threshold and the suppression.

        Fills `scores`; returns each feature's events left in its suppression interval
        (only those above 0) and the calibrated z-score that started the interval.
        """
        config = self.config
        threshold = config.threshold
        refractory = config.refractory_events
        quiet = {
            name: state[name].quiet_events
            for name in columns
            if name in state and state[name].quiet_events > 0
        }
        alarm_z = {name: state[name].alarm_z for name in columns if name in state}
        anomaly_scores = scores.anomaly_scores
        # _combine_largest written out, because this loop runs per event. log_tested[k] is
        # ln k for an event with k warm features.
        log_tested = [0.0] + [math.log(warm_count) for warm_count in range(1, len(columns) + 1)]
        z0 = config.score_scale_z
        sqrt = math.sqrt
        inf = math.inf
        for index, warm_count in enumerate(tested):
            if not warm_count:
                continue
            largest = best[index]
            if largest == inf:
                anomaly_score = 1.0
            else:
                adjusted_sq = largest * largest - 2.0 * log_tested[warm_count]
                z = sqrt(adjusted_sq if adjusted_sq > 0.0 else 0.0)
                anomaly_score = 1.0 if z == inf else z * z / (z * z + z0 * z0)
            anomaly_scores[index] = anomaly_score
            new_alarms: dict[str, float] = {}
            if anomaly_score >= threshold:
                new_alarms = self._new_alarms(scores.calibrated_z(index), quiet, alarm_z)
                scores.anomalies[index] = bool(new_alarms)
                scores.suppressed[index] = not new_alarms
            # A feature in its suppression interval has raised an alarm, so it is warm
            # whenever it occurs: events without warm features never need this.
            if quiet:
                features = events[index]
                for name in [name for name in quiet if name in features]:
                    if quiet[name] > 1:
                        quiet[name] -= 1
                    else:
                        del quiet[name]
            if refractory > 0:
                for name, z_cal in new_alarms.items():
                    quiet[name] = refractory
                    alarm_z[name] = z_cal
        return quiet, alarm_z

    def _new_alarms(
        self, warm: Mapping[str, float], quiet: Mapping[str, int], alarm_z: Mapping[str, float]
    ) -> dict[str, float]:
        """Return the features of an event over the threshold that start an alarm.

        A feature triggers when its own calibrated z-score, corrected for the k features
        tested, reaches the threshold, since the score is that of the largest z-score.
        It starts an alarm unless it is in its suppression interval and not larger than
        the z-score that started that interval.
        """
        threshold = self.config.threshold
        tested = len(warm)
        return {
            name: z_cal
            for name, z_cal in warm.items()
            if self._combine([z_cal], tested) >= threshold
            and (quiet.get(name, 0) == 0 or z_cal > alarm_z.get(name, 0.0))
        }

    def _squash(self, z: float) -> float:
        if math.isinf(z):
            return 1.0
        z0 = self.config.score_scale_z
        return z * z / (z * z + z0 * z0)

    def _combine(self, z_scores: list[float], tested: int | None = None) -> float:
        """Score the largest of `z_scores`, corrected for `tested` features (default: all)."""
        if not z_scores:
            return 0.0
        return self._combine_largest(max(z_scores), len(z_scores) if tested is None else tested)

    def _combine_largest(self, largest: float, tested: int) -> float:
        """Score the largest calibrated z-score of an event with `tested` warm features."""
        if math.isinf(largest):
            return 1.0
        adjusted_sq = largest * largest - 2.0 * math.log(tested)
        return self._squash(math.sqrt(adjusted_sq if adjusted_sq > 0.0 else 0.0))


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
