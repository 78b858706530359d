"""Benchmark the pipeline's throughput, Gemma triage rate and peak memory: `make bench`.

Usage: python -m benchmarks.pipeline_bench [--events N] [--seed N] [--input NAB_DIR_OR_CSV]
       [--repeats N] [--triage-prompts N] [--threads N] [--skip-triage] [--json]

Every row reads the same JSON Lines file of event payloads and runs in its own
process, so each row's max RSS is its own. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from benchmarks.inputs import (
    BenchInput,
    BenchInputError,
    demo_input,
    nab_input,
    write_jsonl,
)
from benchmarks.memory import max_rss_mib
from benchmarks.report import (
    pipeline_checks,
    pipeline_ratios,
    render_pipeline,
    render_triage,
    triage_checks,
)
from benchmarks.stage import TRIAGE
from benchmarks.throughput import STAGES, StageResult
from benchmarks.triage_rate import TriageResult

PROG: Final = "python -m benchmarks.pipeline_bench"
REPO_ROOT: Final = Path(__file__).resolve().parents[1]
USAGE_ERROR: Final = 2
STAGE_FAILED: Final = 1

# Defaults sized so that the whole run takes under 5 minutes on 2 CPUs. With other
# jobs running, the five pipeline rows took about 22 s, and each of the 14 triage
# calls (6 per path plus a warm-up each) took 2 to 17 s on one llama.cpp thread.
DEFAULT_EVENTS: Final = 50_000
DEFAULT_TRIAGE_PROMPTS: Final = 6


class StageFailedError(RuntimeError):
    """A stage process that exited with an error or printed no result."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Measure events per second of the project's parse and scoring against Beam's "
            "AnomalyDetection(ZScore) and a pass-through on the DirectRunner, Gemma triage "
            "calls and tokens per second against bare llama-cpp-python, and peak memory."
        ),
    )
    parser.add_argument(
        "--events",
        type=int,
        default=DEFAULT_EVENTS,
        help=f"events in the input; with --input, the first N rows (default {DEFAULT_EVENTS})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=7,
        help="seed of the demo stream; ignored with --input (default 7, as make demo)",
    )
    parser.add_argument(
        "--input",
        type=Path,
        help="NAB CSV file or directory to read instead of the synthetic stream",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed runs per pipeline row; the median is reported (default 1)",
    )
    parser.add_argument(
        "--triage-prompts",
        type=int,
        default=DEFAULT_TRIAGE_PROMPTS,
        help=f"timed triage calls per path (default {DEFAULT_TRIAGE_PROMPTS})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="llama.cpp CPU threads for both triage paths (default: llama-cpp-python's choice)",
    )
    parser.add_argument("--skip-triage", action="store_true", help="measure the pipeline only")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    return parser


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("events", "repeats", "triage_prompts"):
        value = getattr(args, name)
        if value < 1:
            parser.error(f"--{name.replace('_', '-')} {value} is invalid; pass 1 or more")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads {args.threads} is invalid; pass 1 or more, or leave it out")


def load_input(args: argparse.Namespace) -> BenchInput:
    """Return the NAB rows of `--input`, or the demo's synthetic stream when it is absent."""
    if args.input is not None:
        return nab_input(args.input, args.events)
    return demo_input(args.events, args.seed)


def machine() -> dict[str, Any]:
    """Return the cores, Python and Beam versions and load that the figures depend on."""
    import apache_beam

    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "apache_beam": apache_beam.__version__,
        "load_average_1m_at_start": load[0],
    }


def run_stage_process(
    stage: str,
    input_file: Path,
    *,
    feature: str = "value",
    repeats: int = 1,
    prompts: int = 1,
    threads: int | None = None,
) -> dict[str, Any]:
    """Run one stage in a new Python process and return the JSON it prints."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.stage",
        "--stage",
        stage,
        "--input-file",
        str(input_file),
        "--feature",
        feature,
        "--repeats",
        str(repeats),
        "--prompts",
        str(prompts),
    ]
    if threads is not None:
        command += ["--threads", str(threads)]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
        raise StageFailedError(
            f"stage {stage!r} failed with exit code {completed.returncode}; "
            f"its last error output:\n{tail}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_triage(args: argparse.Namespace, input_file: Path, report: dict[str, Any]) -> list[str]:
    """Run the triage stage into `report`, recording a failure so the pipeline rows still print."""
    try:
        triage = TriageResult.from_json(
            run_stage_process(TRIAGE, input_file, prompts=args.triage_prompts, threads=args.threads)
        )
    except StageFailedError as error:
        report["triage"] = {"error": str(error)}
        return [f"Gemma triage: {error}", "Pass --skip-triage to measure the pipeline only."]
    checks = triage_checks(triage)
    report["triage"] = triage.to_json()
    report["triage_targets"] = [check.to_json() for check in checks]
    return render_triage(triage, checks)


def run_benchmark(args: argparse.Namespace, command_line: str) -> tuple[dict[str, Any], list[str]]:
    """Run every stage; return the JSON report and the lines of the text report."""
    bench_input = load_input(args)
    report: dict[str, Any] = {
        "command": command_line,
        "machine": machine(),
        "input": {
            "description": bench_input.description,
            "events": len(bench_input.payloads),
            "reader_dead_letters": bench_input.reader_dead_letters,
        },
    }
    lines = [
        f"command: {command_line}",
        "machine: {cpus} CPUs ({usable_cpus} usable), {platform}, Python {python}, "
        "apache-beam {apache_beam}, 1-minute load average {load_average_1m_at_start:.2f} at "
        "start".format(**report["machine"]),
        f"input:   {bench_input.description}",
        "runner:  DirectRunner, direct_num_workers=1 (as pipeline.run_local)",
    ]
    if bench_input.reader_dead_letters:
        lines.append(f"         {bench_input.reader_dead_letters} CSV rows rejected by the reader")

    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as workdir:
        input_file = write_jsonl(bench_input, Path(workdir) / "events.jsonl")
        stages: dict[str, StageResult] = {}
        for stage in STAGES:
            _progress(f"running {stage} over {len(bench_input.payloads)} events")
            stages[stage] = StageResult.from_json(
                run_stage_process(
                    stage, input_file, feature=bench_input.feature, repeats=args.repeats
                )
            )
        checks = pipeline_checks(stages)
        ratios = pipeline_ratios(stages)
        report["pipeline"] = [stage.to_json() for stage in stages.values()]
        report["pipeline_targets"] = [check.to_json() for check in checks]
        report["pipeline_ratios"] = [{"name": name, "ratio": ratio} for name, ratio in ratios]
        lines += ["", *render_pipeline(list(stages.values()), checks, ratios)]

        if args.skip_triage:
            report["triage"] = None
        else:
            _progress(f"running triage, {args.triage_prompts} prompts per path")
            lines += ["", *_run_triage(args, input_file, report)]

    report["harness_max_rss_mib"] = max_rss_mib()
    lines += ["", f"max RSS of this harness process: {report['harness_max_rss_mib']:.0f} MiB"]
    return report, lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its report; return 2 on bad arguments, 1 on a failed stage."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(arguments)
    _validate(parser, args)
    command_line = shlex.join([*PROG.split(), *arguments])

    try:
        report, lines = run_benchmark(args, command_line)
    except BenchInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except StageFailedError as error:
        print(f"error: {error}", file=sys.stderr)
        return STAGE_FAILED

    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(lines))
    triage = report.get("triage")
    return STAGE_FAILED if isinstance(triage, dict) and "error" in triage else 0


if __name__ == "__main__":
    raise SystemExit(main())
