"""Run one benchmark stage in this process and print its result as JSON on stdout.

pipeline_bench starts one such process per stage, so that each stage's peak memory
(max RSS) is its own. Usage:
    python -m benchmarks.stage --stage STAGE --input-file FILE [--feature NAME] [--repeats N]
    python -m benchmarks.stage --stage triage --input-file FILE --prompts N [--threads N]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from benchmarks.throughput import STAGES, run_stage

TRIAGE: Final = "triage"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stage",
        description="Run one benchmark stage and print its result as JSON.",
    )
    parser.add_argument("--stage", required=True, choices=(*STAGES, TRIAGE))
    parser.add_argument(
        "--input-file", required=True, type=Path, help="JSON Lines file, one payload per line"
    )
    parser.add_argument("--feature", default="value", help="feature of Beam's ZScore row")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of a pipeline stage")
    parser.add_argument("--prompts", type=int, default=1, help="timed calls per triage path")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp CPU threads")
    return parser


def run(args: argparse.Namespace) -> Any:
    """Run the stage that `args` names over its input file and return the JSON-ready result."""
    stage: str = args.stage
    input_file: Path = args.input_file
    payloads = [line.rstrip(b"\n") for line in input_file.read_bytes().splitlines() if line]
    if stage == TRIAGE:
        from benchmarks.triage_rate import run_triage

        return run_triage(payloads, args.prompts, n_threads=args.threads).to_json()
    return run_stage(
        stage, input_file, events=len(payloads), feature=args.feature, repeats=args.repeats
    ).to_json()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the stage and print its JSON result; return 2 on bad arguments."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    if not args.input_file.is_file():
        print(f"error: input file {args.input_file} does not exist", file=sys.stderr)
        return 2
    result = run(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
