"""Tests for the local runner: every record ends in exactly one place, and CLI errors."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from pipeline import run_local
from pipeline.detector import DetectorConfig
from pipeline.run_local import LocalRunConfig, prepare_output_dir, run
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
        (["--features", "absent.jsonl"], "does not exist; pass a JSON Lines file"),
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


@pytest.mark.parametrize(
    ("triage_rate", "fix"),
    [
        (("none", "0"), "pass a finite number above 0 or omit it, because --triage none makes"),
        (("none", "-1"), "pass a finite number above 0 or omit it, because --triage none makes"),
        (("local", "0"), "pass a finite number above 0, or use --triage none to turn triage off"),
        (("local", "nan"), "pass a finite number above 0, or use --triage none to turn triage"),
    ],
)
def test_cli_bad_triage_rate_exits_2(mixed_input, tmp_path, capsys, triage_rate, fix):
    triage, rate = triage_rate
    output = tmp_path / "o"
    argv = ["--input", str(mixed_input), "--output", str(output), "--triage", triage]
    assert run_local.main([*argv, "--triage-max-per-second", rate]) == 2
    error = capsys.readouterr().err
    assert f"error: --triage-max-per-second {float(rate)!r} is invalid; " in error
    assert fix in error
    assert not output.exists()


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


def nab_directory(tmp_path):
    directory = tmp_path / "nab"
    (directory / "cat").mkdir(parents=True)
    rows = "".join(f"2014-01-01 00:{minute:02d}:00,{minute % 3}\n" for minute in range(0, 60, 5))
    (directory / "cat" / "a.csv").write_text("timestamp,value\n" + rows)
    (directory / "cat" / "b.csv").write_text("timestamp,value\n" + rows)
    return directory


@pytest.mark.parametrize("output", ["file", "file/sub", "/proc/x"])
def test_cli_unusable_output_exits_2(mixed_input, tmp_path, capsys, output):
    (tmp_path / "file").write_text("")
    path = output if output.startswith("/") else str(tmp_path / output)
    argv = ["--input", str(mixed_input), "--output", path, "--triage", "none"]
    assert run_local.main(argv) == 2
    captured = capsys.readouterr()
    assert path in captured.err
    assert "choose a directory you can write" in captured.err
    assert captured.out == ""


def test_cli_bad_csv_header_exits_2(tmp_path, capsys):
    directory = nab_directory(tmp_path)
    bad = directory / "cat" / "c.csv"
    bad.write_text("time,v\n2014-01-01 00:00:00,1\n")
    output = tmp_path / "out"
    argv = ["--input", str(directory), "--output", str(output), "--triage", "none"]
    assert run_local.main(argv) == 2
    captured = capsys.readouterr()
    assert str(bad) in captured.err
    assert "'timestamp,value'" in captured.err
    assert "Traceback" not in captured.err
    assert not output.exists()


def test_cli_reports_label_keys_not_in_input(tmp_path, capsys):
    window = [["2014-01-01 00:00:00", "2014-01-01 00:30:00"]]
    labels = tmp_path / "windows.json"
    labels.write_text(
        json.dumps(
            {"cat/a.csv": window, "cat/bb.csv": window * 2, "other/c.csv": window, "d.csv": []}
        )
    )
    argv = ["--input", str(nab_directory(tmp_path)), "--output", str(tmp_path / "out")]
    argv += ["--triage", "none", "--labels", str(labels)]
    assert run_local.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        "labelled windows:    0 of 1 with at least one detection "
        "(windows of the entities in this input)"
    ) in lines
    assert (
        "label keys not in this input: 3 with 3 windows, not counted above: "
        "cat/bb.csv, d.csv, other/c.csv"
    ) in lines
    assert "entities with no label key: 1, their detections count as outside: cat/b.csv" in lines


def test_cli_binary_labels_exit_2(mixed_input, tmp_path, capsys):
    labels = tmp_path / "windows.json"
    labels.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    argv = ["--input", str(mixed_input), "--output", str(tmp_path / "o"), "--triage", "none"]
    assert run_local.main([*argv, "--labels", str(labels)]) == 2
    error = capsys.readouterr().err
    assert f"label file {labels} is not UTF-8 text" in error
    assert "NAB combined_windows.json" in error
    assert '"<category>/<file>.csv" to a list of [start, end] timestamp pairs' in error


def test_cli_csv_named_txt_exits_2(tmp_path, capsys):
    path = tmp_path / "taxi.txt"
    path.write_text("timestamp,value\n2014-01-01 00:00:00,1\n")
    output = tmp_path / "out"
    assert run_local.main(["--input", str(path), "--output", str(output), "--triage", "none"]) == 2
    captured = capsys.readouterr()
    assert f"error: input {path} is read as JSON Lines" in captured.err
    assert "rename it to end in .csv" in captured.err
    assert captured.out == ""
    assert not output.exists()


def test_cli_jsonl_named_csv_exits_2(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text(event_line("a", 0, 1.0) + "\n")
    argv = ["--input", str(path), "--output", str(tmp_path / "out"), "--triage", "none"]
    assert run_local.main(argv) == 2
    assert "rename it to end in .jsonl" in capsys.readouterr().err


def test_cli_jsonl_directory_exits_2(mixed_input, tmp_path, capsys):
    directory = mixed_input.parent
    argv = ["--input", str(directory), "--output", str(tmp_path / "out"), "--triage", "none"]
    assert run_local.main(argv) == 2
    error = capsys.readouterr().err
    assert "a JSON Lines input must be passed as a file, not a directory" in error
    assert f"--input {mixed_input}" in error


def test_byte_order_mark_first_event_scored(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [event_line("a", index, 1.0) for index in range(3)]
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    output = tmp_path / "out"
    summary = run(LocalRunConfig(input_path=path, output_dir=output, triage=TriageConfig("none")))
    assert summary.records_in == 3
    assert summary.scored == 3
    assert not summary.input_dead_letters
    assert summary.balanced
    scored_ids = sorted(row["event_id"] for row in read_jsonl(output / "scored_events.jsonl"))
    assert scored_ids == ["a-0", "a-1", "a-2"]


def test_nab_non_finite_rows_are_read_errors(tmp_path):
    path = tmp_path / "a.csv"
    rows = ["2014-01-01 00:00:00,1", "2014-01-01 00:05:00,nan", "2014-01-01 00:10:00,-inf"]
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    output = tmp_path / "out"
    summary = run(LocalRunConfig(input_path=path, output_dir=output, triage=TriageConfig("none")))
    assert summary.input_dead_letters == {"read/invalid_csv_row": 2}
    assert summary.scored == 1
    assert summary.balanced


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
def test_cli_empty_input_says_no_records(tmp_path, capsys, content):
    path = tmp_path / "events.jsonl"
    path.write_text(content)
    argv = ["--input", str(path), "--output", str(tmp_path / "out"), "--triage", "none"]
    assert run_local.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"input {path} contains no records, so nothing was scored" in lines
    assert "records read:        0" in lines
    assert "  every record in exactly one place: yes" in lines


def test_cli_features_file_joins_context(mixed_input, tmp_path, capsys):
    features = tmp_path / "features.jsonl"
    features.write_text('{"entity_id": "a", "segment": "gold"}\n{"entity_id": "b", "tier": 2}\n')
    output = tmp_path / "out"
    argv = ["--input", str(mixed_input), "--output", str(output), "--triage", "none"]
    assert run_local.main([*argv, "--features", str(features)]) == 0
    assert "every record in exactly one place: yes" in capsys.readouterr().out
    detections = read_jsonl(output / "detections.jsonl")
    assert detections
    assert all(
        row["context"] == {"segment": "gold"} for row in detections if row["entity_id"] == "a"
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "is a directory"),
        ("binary.jsonl", "is not UTF-8"),
        ("rows.jsonl", "rows.jsonl:1: invalid JSON"),
    ],
)
def test_cli_bad_features_file_exits_2(mixed_input, tmp_path, capsys, name, problem):
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe")
    (tmp_path / "rows.jsonl").write_text("entity_id,segment\na,gold\n")
    features = tmp_path / name
    output = tmp_path / "out"
    argv = ["--input", str(mixed_input), "--output", str(output), "--triage", "none"]
    assert run_local.main([*argv, "--features", str(features)]) == 2
    error = capsys.readouterr().err
    assert str(features) in error
    assert problem in error
    assert not output.exists()


def test_cli_features_path_error_names_format(mixed_input, tmp_path, capsys):
    features = tmp_path / "absent.jsonl"
    argv = ["--input", str(mixed_input), "--output", str(tmp_path / "out"), "--triage", "none"]
    assert run_local.main([*argv, "--features", str(features)]) == 2
    error = capsys.readouterr().err
    assert f"error: features file {features} does not exist; pass a JSON Lines file" in error
    assert '{"entity_id": ..., <field>: <value>} object per line' in error


def test_prepare_output_dir_removes_earlier_outputs(tmp_path):
    for name in ("scored_events.jsonl", "detections.jsonl", "dead_letter.jsonl", "notes.txt"):
        (tmp_path / name).write_text("old\n", encoding="utf-8")
    prepare_output_dir(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
