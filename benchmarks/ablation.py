"""Show where the parse + score row's time goes by removing its parts one at a time.

Usage: python -m benchmarks.ablation [--events N] [--seed N] [--repeats N]

Runs the pass-through, the grouping reference and the parse + score row of
`make bench` on the demo stream, then the parse + score row twice more with a part
replaced by a stub, all in this process:

- "stub detector": `Detector.score_events` returns zero scores without scoring.
- "stub detector, no records": also, each event yields its event_id in place of a
  ScoredEvent (so no record or event time is built).

The stubs exist only while their row runs. They show how fast the row could get if
that part cost nothing, which bounds what any faster detector could reach.
"""

# Beam's pipeline APIs carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks.inputs import demo_input, write_jsonl
from benchmarks.pipeline_bench import machine
from benchmarks.throughput import GROUPING, PARSE_SCORE, PASSTHROUGH, run_once
from pipeline.columns import EntityColumns
from pipeline.detector import Detector, FeatureState, SeriesScores
from pipeline.scoring import _ScoreOutputs


def _stub_score_events(
    self: Detector,
    state: Mapping[str, FeatureState],
    features: Sequence[Mapping[str, float]],
    event_times: Sequence[int | None],
) -> tuple[SeriesScores, dict[str, FeatureState]]:
    return SeriesScores(self, features, {}, {}), dict(state)


def _ids_only(
    self: _ScoreOutputs,
    state: dict[str, FeatureState],
    entity_id: str,
    ordered: EntityColumns,
) -> Generator[Any, None, dict[str, FeatureState]]:
    self.detector.score_events(state, ordered[2], ordered[1])
    yield from ordered[0]
    return state


def _stub_detector() -> AbstractContextManager[Any]:
    return mock.patch.object(Detector, "score_events", _stub_score_events)


@contextmanager
def _stub_detector_no_records() -> Iterator[None]:
    with _stub_detector(), mock.patch.object(_ScoreOutputs, "score_in_order", _ids_only):
        yield


_VARIANTS: dict[str, tuple[str, Callable[[], AbstractContextManager[Any]]]] = {
    "pass-through": (PASSTHROUGH, nullcontext),
    "reference: group, sort": (GROUPING, nullcontext),
    "parse + score": (PARSE_SCORE, nullcontext),
    "parse + score, stub detector": (PARSE_SCORE, _stub_detector),
    "parse + score, stub detector, no records": (PARSE_SCORE, _stub_detector_no_records),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run each variant `--repeats` times and print the median seconds and events/s."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ablation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=50_000, help="events (default 50000)")
    parser.add_argument("--seed", type=int, default=7, help="demo stream seed (default 7)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (default 3)")
    args = parser.parse_args(argv)
    for name in ("events", "repeats"):
        value = getattr(args, name)
        if value < 1:
            parser.error(f"--{name} {value} is invalid; pass 1 or more")

    bench_input = demo_input(args.events, args.seed)
    print(
        "machine: {cpus} CPUs ({usable_cpus} usable), {platform}, Python {python}, "
        "apache-beam {apache_beam}, 1-minute load average {load_average_1m_at_start:.2f} at "
        "start".format(**machine())
    )
    print(f"input:   {bench_input.description}")
    print(f"runner:  DirectRunner, direct_num_workers=1; median of {args.repeats} run(s)")
    with tempfile.TemporaryDirectory(prefix="ablation-") as workdir:
        path = write_jsonl(bench_input, Path(workdir) / "events.jsonl")
        print(f"{'variant':<44} {'seconds':>8} {'events/s':>9}")
        for label, (stage, patch) in _VARIANTS.items():
            seconds = []
            for _ in range(args.repeats):
                with patch():
                    seconds.append(run_once(stage, path, bench_input.feature)[0])
            median = statistics.median(seconds)
            print(f"{label:<44} {median:>8.2f} {args.events / median:>9.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
