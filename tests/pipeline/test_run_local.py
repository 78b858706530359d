"""Tests for the local runner: every record ends in exactly one place, and CLI errors."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from pipeline import run_local
from pipeline.detector import DetectorConfig
from pipeline.run_local import LocalRunConfig, run
from pipeline.summary import read_jsonl
from pipeline.triage import TriageConfig

START = datetime(2024, 5, 1, tzinfo=UTC)


def event_line(entity, index, value):
    return json.dumps(
        {
            "event_id": f"{entity}-{index}",
            "entity_id": entity,
            "event_time": (START + timedelta(minutes=index)).isoformat(),
            "features": {"amount": value},
        }
    )


@pytest.fixture
def mixed_input(tmp_path):
    lines = [event_line("a", i, 10.0 + (i % 3)) for i in range(30)]
    lines += [event_line("b", i, 5.0 + (i % 2)) for i in range(25)]
    lines[28] = event_line("a", 28, 500.0)
    lines += [event_line("a", 3, 11.0), event_line("b", 7, 6.0), event_line("a", 3, 11.0)]
    lines += ["{broken", "[]", json.dumps({"event_id": "x", "entity_id": "a"})]
    lines.reverse()
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    return path


def test_every_record_in_exactly_one_place(mixed_input, tmp_path):
    output = tmp_path / "out"
    summary = run(
        LocalRunConfig(
            input_path=mixed_input,
            output_dir=output,
            triage=TriageConfig(handler="none"),
            detector=DetectorConfig(warmup_events=10),
        )
    )
    assert summary.records_in == 61
    assert summary.scored == 55
    assert sum(summary.input_dead_letters.values()) == 3
    assert summary.duplicates == 3
    assert summary.balanced

    scored_ids = [row["event_id"] for row in read_jsonl(output / "scored_events.jsonl")]
    assert len(scored_ids) == len(set(scored_ids))
    detections = read_jsonl(output / "detections.jsonl")
    assert [row["event_id"] for row in detections] == ["a-28"]
    assert detections[0]["triage"]["status"] == "skipped"
    codes = sorted(row["error_code"] for row in read_jsonl(output / "dead_letter.jsonl"))
    assert codes == ["invalid_json", "missing_field", "not_an_object"]


def test_input_order_does_not_change_scores(tmp_path):
    lines = [event_line(entity, i, float((i * 7) % 11)) for entity in "ab" for i in range(40)]
    sorted_path = tmp_path / "sorted.jsonl"
    sorted_path.write_text("\n".join(lines))
    shuffled_path = tmp_path / "shuffled.jsonl"
    shuffled_path.write_text("\n".join(random.Random(3).sample(lines, len(lines))))

    scores = []
    for path in (sorted_path, shuffled_path):
        output = tmp_path / path.stem
        run(LocalRunConfig(input_path=path, output_dir=output, triage=TriageConfig("none")))
        rows = read_jsonl(output / "scored_events.jsonl")
        scores.append({row["event_id"]: row["anomaly_score"] for row in rows})
    assert len(scores[0]) == 80
    assert scores[0] == scores[1]


def test_features_file_joins_context(tmp_path, mixed_input):
    output = tmp_path / "out"
    summary = run(
        LocalRunConfig(
            input_path=mixed_input,
            output_dir=output,
            triage=TriageConfig(handler="none"),
            detector=DetectorConfig(warmup_events=10),
            features={"a": {"segment": "gold"}},
        )
    )
    assert summary.balanced
    (detection,) = read_jsonl(output / "detections.jsonl")
    assert detection["context"] == {"segment": "gold"}


def test_cli_prints_summary(mixed_input, tmp_path, capsys):
    code = run_local.main(
        ["--input", str(mixed_input), "--output", str(tmp_path / "o"), "--triage", "none"]
    )
    assert code == 0
    output = capsys.readouterr().out
    assert "records read:        61" in output
    assert "every record in exactly one place: yes" in output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input", "absent.jsonl"], "does not exist"),
        (["--labels", "absent.json"], "cannot read label file"),
        (["--features", "absent.jsonl"], "cannot read features file"),
    ],
)
def test_cli_bad_arguments_exit_2(mixed_input, tmp_path, capsys, extra, message):
    argv = ["--input", str(mixed_input), "--output", str(tmp_path / "o"), "--triage", "none"]
    argv += [str(tmp_path / item) if item.startswith("absent") else item for item in extra]
    assert run_local.main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_unknown_triage_exits_2(mixed_input, tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        run_local.main(["--input", str(mixed_input), "--output", str(tmp_path), "--triage", "gpt"])
    assert caught.value.code == 2
    assert "invalid choice: 'gpt'" in capsys.readouterr().err


@pytest.mark.slow
def test_nab_directory_with_labels(tmp_path, capsys):
    from tests.pipeline.test_sources import NAB_ROOT

    if not NAB_ROOT.exists():
        pytest.skip("NAB data not found next to the repository")
    code = run_local.main(
        [
            "--input", str(NAB_ROOT / "data" / "artificialWithAnomaly"),
            "--output", str(tmp_path),
            "--triage", "none",
            "--labels", str(NAB_ROOT / "labels" / "combined_windows.json"),
        ]
    )  # fmt: skip
    output = capsys.readouterr().out
    assert code == 0
    assert "every record in exactly one place: yes" in output
    assert "labelled windows:" in output
