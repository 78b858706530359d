"""Targets of the benchmark, the ratios that check them, and the printed report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from benchmarks.throughput import (
    BEAM_ZSCORE,
    CORE,
    GROUPING,
    PARSE_SCORE,
    PASSTHROUGH,
    STAGE_LABELS,
    StageResult,
)
from benchmarks.triage_rate import TriageResult

MIN_RATIO_VS_BEAM_ZSCORE: Final = 2.5
"""Parse + score must reach at least 2.5 times the events per second of Beam's ZScore."""

MIN_RATIO_VS_PASSTHROUGH: Final = 0.6
"""Parse + score must reach at least 60% of the pass-through's events per second."""

MIN_RATIO_VS_BARE_LLAMA: Final = 0.9
"""The triage handler must reach at least 90% of bare llama-cpp-python's rate."""


@dataclass(frozen=True)
class TargetCheck:
    """One ratio of two measured rates against its minimum."""

    name: str
    ratio: float
    minimum: float

    @property
    def met(self) -> bool:
        """Whether the ratio reaches the minimum."""
        return self.ratio >= self.minimum

    def to_json(self) -> dict[str, Any]:
        """Return the check as a JSON-ready dict."""
        return {"name": self.name, "ratio": self.ratio, "minimum": self.minimum, "met": self.met}


def pipeline_checks(stages: Mapping[str, StageResult]) -> list[TargetCheck]:
    """Compare the parse + score row, the one the targets apply to, with Beam and pass-through.

    Checks whose rows were not measured are left out.
    """
    checks: list[TargetCheck] = []
    if PARSE_SCORE not in stages:
        return checks
    rate = stages[PARSE_SCORE].events_per_second
    if BEAM_ZSCORE in stages:
        checks.append(
            TargetCheck(
                f"{PARSE_SCORE} / {BEAM_ZSCORE} events/s",
                rate / stages[BEAM_ZSCORE].events_per_second,
                MIN_RATIO_VS_BEAM_ZSCORE,
            )
        )
    if PASSTHROUGH in stages:
        checks.append(
            TargetCheck(
                f"{PARSE_SCORE} / {PASSTHROUGH} events/s",
                rate / stages[PASSTHROUGH].events_per_second,
                MIN_RATIO_VS_PASSTHROUGH,
            )
        )
    return checks


def pipeline_ratios(stages: Mapping[str, StageResult]) -> list[tuple[str, float]]:
    """Return the ratios of the rows without a target (the core, the grouping reference).

    Each is (name, ratio) against Beam's ZScore and the pass-through, when measured.
    """
    ratios: list[tuple[str, float]] = []
    for row in (CORE, GROUPING):
        if row not in stages:
            continue
        for base in (BEAM_ZSCORE, PASSTHROUGH):
            if base in stages:
                ratio = stages[row].events_per_second / stages[base].events_per_second
                ratios.append((f"{row} / {base} events/s", ratio))
    return ratios


def triage_checks(result: TriageResult) -> list[TargetCheck]:
    """Compare the handler's rates with bare llama-cpp-python's, summed and paired by prompt."""
    return [
        TargetCheck(
            "handler / bare llama-cpp, median per prompt",
            result.paired_ratio(),
            MIN_RATIO_VS_BARE_LLAMA,
        ),
        TargetCheck(
            "handler / bare llama-cpp calls/s",
            result.handler.calls_per_second / result.bare.calls_per_second,
            MIN_RATIO_VS_BARE_LLAMA,
        ),
        TargetCheck(
            "handler / bare llama-cpp tokens/s",
            result.handler.tokens_per_second / result.bare.tokens_per_second,
            MIN_RATIO_VS_BARE_LLAMA,
        ),
    ]


def _check_lines(checks: Sequence[TargetCheck]) -> list[str]:
    return [
        f"  {check.name:<42} {check.ratio:>6.2f}x   target >= {check.minimum:.2f}x   "
        f"{'met' if check.met else 'NOT MET'}"
        for check in checks
    ]


def render_pipeline(
    stages: Sequence[StageResult],
    checks: Sequence[TargetCheck],
    ratios: Sequence[tuple[str, float]] = (),
) -> list[str]:
    """Return the lines of the throughput and memory table, its targets and other ratios."""
    lines = [
        "Pipeline throughput, triage off (median of the repeats; wall time of Pipeline.run)",
        f"  {'row':<54} {'events':>7} {'outputs':>7} {'aside':>5} {'seconds':>8} "
        f"{'events/s':>9} {'max RSS MiB':>11}",
    ]
    for stage in stages:
        lines.append(
            f"  {STAGE_LABELS[stage.stage]:<54} {stage.events:>7} {stage.outputs:>7} "
            f"{stage.set_aside:>5} {stage.median_seconds:>8.2f} "
            f"{stage.events_per_second:>9.0f} {stage.max_rss_mib:>11.0f}"
        )
    lines.append(
        "  aside: invalid lines, dead letters and duplicates, which a row routes "
        "away from its main output"
    )
    lines.append("Targets (parse + score)")
    lines.extend(_check_lines(checks))
    if ratios:
        lines.append("Other ratios (no target)")
        lines.extend(f"  {name:<42} {ratio:>6.2f}x" for name, ratio in ratios)
    return lines


def render_triage(result: TriageResult, checks: Sequence[TargetCheck]) -> list[str]:
    """Return the lines of the triage comparison and its target checks."""
    lines = [
        f"Gemma triage: {result.prompts} prompts ({result.distinct_prompts} distinct) from "
        f"{result.prompt_source}",
        f"  llama-cpp-python {result.llama_cpp_version}, n_threads={result.n_threads}, "
        f"n_gpu_layers={result.n_gpu_layers}, model {result.model_path}",
        f"  {'path':<40} {'calls':>5} {'seconds':>8} {'calls/s':>8} {'tokens':>7} {'tokens/s':>9}",
    ]
    labels = {
        "handler": "project LocalGemmaHandler.run_inference",
        "bare": "bare llama_cpp.Llama.create_completion",
    }
    for path in (result.handler, result.bare):
        lines.append(
            f"  {labels[path.path]:<40} {path.calls:>5} {path.seconds:>8.1f} "
            f"{path.calls_per_second:>8.3f} {path.generated_tokens:>7} "
            f"{path.tokens_per_second:>9.1f}"
        )
    lines.append(
        "  seconds per call, handler: "
        + ", ".join(f"{seconds:.1f}" for seconds in result.handler.call_seconds)
    )
    lines.append(
        "  seconds per call, bare:    "
        + ", ".join(f"{seconds:.1f}" for seconds in result.bare.call_seconds)
    )
    lines.append(
        f"  identical outputs: {result.identical_outputs} of {result.prompts}; valid verdicts "
        f"from the handler: {result.verdicts_done} of {result.prompts}"
    )
    lines.append(
        f"  max RSS of the triage process (both models loaded): {result.max_rss_mib:.0f} MiB"
    )
    lines.append("Targets")
    lines.extend(_check_lines(checks))
    return lines
