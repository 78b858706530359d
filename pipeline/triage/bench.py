"""Measure per-call latency of the local triage model: python -m pipeline.triage.bench."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import cast

from pipeline.triage.local_handler import LocalGemmaHandler
from pipeline.triage.outcome import TriageOutcome
from pipeline.triage.samples import sample_detections


def main(argv: list[str] | None = None) -> int:
    """Load the embedded model, triage the sample detections, and print the latencies."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--calls", type=int, default=9, help="timed model calls after one warm-up call"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp CPU threads (default: llama-cpp-python's choice)",
    )
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error(f"--calls {args.calls} is invalid; pass 1 or more")

    handler = LocalGemmaHandler(n_threads=args.threads)
    started = time.perf_counter()
    model = handler.load_model()
    load_s = time.perf_counter() - started
    print(f"cpus={os.cpu_count()} load_s={load_s:.2f}")

    samples = sample_detections()
    handler.run_inference(samples[:1], model)  # warm-up, not timed

    latencies: list[float] = []
    for index in range(args.calls):
        detection = samples[index % len(samples)]
        [result] = handler.run_inference([detection], model)
        outcome = cast(TriageOutcome, result.inference)
        latency_ms = outcome.latency_ms or 0.0  # the local handler always times its calls
        latencies.append(latency_ms)
        verdict = outcome.verdict
        print(
            f"{detection.event_id}: {latency_ms:.0f} ms, {outcome.status}, "
            f"{verdict.severity if verdict else outcome.error_message}"
        )

    model.close()
    print(
        f"calls={len(latencies)} median_ms={statistics.median(latencies):.0f} "
        f"mean_ms={statistics.fmean(latencies):.0f} max_ms={max(latencies):.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
