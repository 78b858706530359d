"""Per-entity streaming anomaly detector (robust exponentially weighted z-scores), without Beam.

Method
------
Each entity keeps, per feature, three numbers: the count ``n`` of values seen, an
exponentially weighted mean ``m`` and an exponentially weighted variance ``v``. For a
new value ``x`` the detector first scores it against the state *before* the update,
then updates the state.

Scoring. With ``s = max(sqrt(v), min_std, relative_min_std * |m|)`` the feature's
z-score is ``z = |x - m| / s``. A feature contributes only once it has
``warmup_events`` values, so every score of a feature still in warm-up is 0. The largest
z-score over the ``k`` contributing features is then corrected for the number of features
tested. With the Gaussian tail ``P(|Z| > z) ~ exp(-z^2 / 2)``, taking the maximum of ``k``
tests multiplies the tail by ``k``, which is the same as subtracting ``2 ln k`` from
``z^2``::

    z_eff = sqrt(max(0, max_i(z_i)^2 - 2 ln k))
    anomaly_score = z_eff^2 / (z_eff^2 + z0^2)        with z0 = score_scale_z

so the score is in [0, 1), 0.5 at ``z_eff = z0`` and grows monotonically with the
deviation. The event is an anomaly when ``anomaly_score >= threshold``. Each feature's
own score ``z_i^2 / (z_i^2 + z0^2)`` is reported for triage.

Update (the incremental form of an exponentially weighted mean and variance)::

    a  = max(alpha, 1 / (n + 1))                   alpha = 1 - 2^(-1 / half_life_events)
    d  = x - m, clipped to [-clip_z * s, clip_z * s] once the feature is warm
    m' = m + a * d
    v' = (1 - a) * (v + a * d^2)

``1 / (n + 1)`` makes the first values an ordinary running mean, so the warm-up does not
depend on the initial value. Clipping the deviation (a Huber-type update) keeps one
spike from inflating the baseline and masking the next one, yet a lasting level shift
still moves the mean by up to ``a * clip_z * s`` and widens ``s`` on every event, so the
baseline catches up with drift within a few half-lives.

Defaults and why
----------------
- ``threshold = 0.8``: with ``z0 = 2`` this is ``z_eff = 4``. For a single Gaussian
  feature that is a two-sided tail of about 6e-5, roughly one false alarm per 16,000
  normal events per entity; heavier-tailed data alarms more often.
- ``score_scale_z = 2``: puts the score's steepest part between z = 1 and z = 6, where
  the decision is made, instead of saturating near 1 at z = 3 as a normal CDF would.
- ``warmup_events = 20``: enough values for a usable standard deviation (its relative
  standard error is about 1 / sqrt(2 (n - 1)), 16% at n = 20).
- ``half_life_events = 50``: a value's weight halves after 50 events, so the baseline
  follows drift over roughly a hundred events but one burst does not rewrite it.
- ``clip_z = 3``: values within three standard deviations update the baseline fully.
- ``min_std = 1e-6``, ``relative_min_std = 1e-3``: a constant series has zero variance;
  the floor makes its first change score high rather than divide by zero, and the
  relative part keeps that floor meaningful for large values.

State is ``3 * features`` numbers per entity (bounded by ``max_features``) and the
update is O(features) per event. Seasonality is not modelled: a daily cycle looks like
drift, which the forgetting follows only if the cycle is slow compared to the
half-life, so add a seasonal feature (e.g. the deviation from the same hour last week)
upstream when cycles matter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DETECTOR_NAME = "ewma-robust-z/1"


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

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold} is out of range; use a value in (0, 1]")
        if self.warmup_events < 2:
            raise ValueError(
                f"warmup_events={self.warmup_events} is too small; use at least 2, because "
                "a standard deviation needs two values"
            )
        for name in ("half_life_events", "clip_z", "score_scale_z", "min_std"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value} is invalid; use a positive finite number")
        if self.relative_min_std < 0:
            raise ValueError(f"relative_min_std={self.relative_min_std} must not be negative")
        if self.max_features < 1:
            raise ValueError(f"max_features={self.max_features} must be at least 1")

    @property
    def alpha(self) -> float:
        """Weight of a new value once warm: 1 - 2^(-1 / half_life_events)."""
        return 1.0 - math.pow(2.0, -1.0 / self.half_life_events)

    def z_at_threshold(self) -> float:
        """Return the effective z-score at which the score reaches the threshold."""
        if self.threshold >= 1.0:
            return math.inf
        return self.score_scale_z * math.sqrt(self.threshold / (1.0 - self.threshold))


@dataclass(frozen=True)
class FeatureState:
    """One feature's baseline: count of values, weighted mean and weighted variance."""

    count: int
    mean: float
    var: float


EntityState = Mapping[str, FeatureState]
EncodedState = tuple[tuple[str, int, float, float], ...]


@dataclass(frozen=True)
class FeatureScore:
    """One feature's value against its baseline before the update."""

    feature: str
    value: float
    mean: float
    std: float
    count: int
    z: float
    score: float


@dataclass(frozen=True)
class Score:
    """The detector's verdict on one event.

    `features` lists every feature of the event that has a baseline, in name order.
    `untracked_features` counts new features ignored because the entity's state already
    contains `max_features` features.
    """

    anomaly_score: float
    is_anomaly: bool
    features: tuple[FeatureScore, ...]
    untracked_features: int = 0


class Detector:
    """Scores events against per-entity state and returns the updated state.

    The detector stores only its configuration, and the caller keeps each entity's state.
    One detector therefore serves every entity, in a Beam stateful DoFn or in a test.
    """

    name = DETECTOR_NAME

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()

    def score(
        self, state: EntityState, features: Mapping[str, float]
    ) -> tuple[Score, dict[str, FeatureState]]:
        """Score one event's features against `state`; return the score and the new state."""
        config = self.config
        new_state = dict(state)
        feature_scores: list[FeatureScore] = []
        warm_z: list[float] = []
        untracked = 0

        for name in sorted(features):
            value = float(features[name])
            previous = state.get(name)
            if previous is None:
                if len(new_state) >= config.max_features:
                    untracked += 1
                    continue
                new_state[name] = FeatureState(count=1, mean=value, var=0.0)
                continue

            scale = self._scale(previous)
            z = abs(value - previous.mean) / scale
            warm = previous.count >= config.warmup_events
            feature_scores.append(
                FeatureScore(
                    feature=name,
                    value=value,
                    mean=previous.mean,
                    std=math.sqrt(previous.var),
                    count=previous.count,
                    z=z,
                    score=self._squash(z) if warm else 0.0,
                )
            )
            if warm:
                warm_z.append(z)
            new_state[name] = self._update(previous, value, scale, warm)

        anomaly_score = self._combine(warm_z)
        return (
            Score(
                anomaly_score=anomaly_score,
                is_anomaly=anomaly_score >= config.threshold,
                features=tuple(feature_scores),
                untracked_features=untracked,
            ),
            new_state,
        )

    def score_series(self, events: Iterable[Mapping[str, float]]) -> list[Score]:
        """Score a sequence of one entity's events in order, starting from empty state."""
        state: dict[str, FeatureState] = {}
        scores: list[Score] = []
        for features in events:
            score, state = self.score(state, features)
            scores.append(score)
        return scores

    def _scale(self, feature: FeatureState) -> float:
        config = self.config
        return max(
            math.sqrt(feature.var), config.min_std, config.relative_min_std * abs(feature.mean)
        )

    def _update(
        self, feature: FeatureState, value: float, scale: float, warm: bool
    ) -> FeatureState:
        config = self.config
        weight = max(config.alpha, 1.0 / (feature.count + 1))
        deviation = value - feature.mean
        if warm:
            limit = config.clip_z * scale
            deviation = min(max(deviation, -limit), limit)
        mean = feature.mean + weight * deviation
        var = (1.0 - weight) * (feature.var + weight * deviation * deviation)
        return FeatureState(count=feature.count + 1, mean=mean, var=var)

    def _squash(self, z: float) -> float:
        if math.isinf(z):
            return 1.0
        z0 = self.config.score_scale_z
        return z * z / (z * z + z0 * z0)

    def _combine(self, z_scores: list[float]) -> float:
        if not z_scores:
            return 0.0
        largest = max(z_scores)
        if math.isinf(largest):
            return 1.0
        adjusted_sq = max(0.0, largest * largest - 2.0 * math.log(len(z_scores)))
        return self._squash(math.sqrt(adjusted_sq))


def encode_state(state: EntityState) -> EncodedState:
    """Encode state as a tuple of (feature, count, mean, var), the compact form kept in Beam."""
    return tuple(
        (name, feature.count, feature.mean, feature.var) for name, feature in sorted(state.items())
    )


def decode_state(
    encoded: Iterable[tuple[str, int, float, float]] | None,
) -> dict[str, FeatureState]:
    """Decode the output of encode_state; None gives empty state."""
    if encoded is None:
        return {}
    return {
        name: FeatureState(count=count, mean=mean, var=var) for name, count, mean, var in encoded
    }
