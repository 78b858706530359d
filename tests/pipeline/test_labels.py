"""Tests for evaluating detections against labelled anomaly windows."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import json
from datetime import UTC, datetime

import pytest

from pipeline.labels import LabelsError, evaluate_windows, load_windows, match_keys


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


WINDOWS_JSON = {
    "cat/a.csv": [
        ["2014-01-01 00:00:00.000000", "2014-01-01 06:00:00.000000"],
        ["2014-01-02 00:00:00.000000", "2014-01-02 06:00:00.000000"],
    ],
    "cat/b.csv": [],
    "other/c.csv": [["2014-01-01 00:00:00.000000", "2014-01-01 01:00:00.000000"]],
}


@pytest.fixture
def windows(tmp_path):
    path = tmp_path / "windows.json"
    path.write_text(json.dumps(WINDOWS_JSON))
    return load_windows(path)


def test_load_windows_parses_utc(windows):
    assert windows["cat/a.csv"][0] == (at("2014-01-01 00:00:00"), at("2014-01-01 06:00:00"))
    assert windows["cat/b.csv"] == []


def test_evaluate_counts_hits_and_outside(windows):
    detections = [
        ("cat/a.csv", at("2014-01-01 03:00:00")),
        ("cat/a.csv", at("2014-01-01 04:00:00")),
        ("cat/a.csv", at("2014-01-03 00:00:00")),
        ("cat/b.csv", at("2014-01-01 03:00:00")),
    ]
    result = evaluate_windows(windows, ["cat/a.csv", "cat/b.csv"], detections)
    assert result.windows == 2
    assert result.windows_detected == 1
    assert result.detections == 4
    assert result.detections_outside == 2
    assert result.window_recall == 0.5


def test_window_bounds_are_inclusive(windows):
    detections = [("cat/a.csv", at("2014-01-02 06:00:00"))]
    result = evaluate_windows(windows, ["cat/a.csv"], detections)
    assert result.windows_detected == 1
    assert result.detections_outside == 0


def test_single_file_name_matches_key(windows):
    assert match_keys(windows, ["a.csv", "c.csv", "zzz.csv"]) == {
        "a.csv": "cat/a.csv",
        "c.csv": "other/c.csv",
    }


def test_unlabelled_entity_detections_are_outside(windows):
    result = evaluate_windows(windows, ["zzz.csv"], [("zzz.csv", at("2014-01-01 00:00:00"))])
    assert result.windows == 0
    assert result.detections_outside == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "is not a JSON object; pass NAB combined_windows.json"),
        ('{"a": 1}', "must map to a list"),
        ('{"a": [["2014-01-01"]]}', r"a\[0\] must be a \[start, end\] pair"),
        ('{"a": [["x", "2014-01-01"]]}', "'x' is not a timestamp"),
        ('{"a": [["2014-01-02", "2014-01-01"]]}', "ends before it starts"),
        ("{", r"is not valid JSON \(.* at line 1\); pass NAB combined_windows.json"),
        ("a,b\n1,2\n", "is not valid JSON"),
    ],
)
def test_load_windows_errors(tmp_path, content, message):
    path = tmp_path / "windows.json"
    path.write_text(content)
    with pytest.raises(LabelsError, match=message):
        load_windows(path)


def test_load_windows_single_timestamps_hint(tmp_path):
    path = tmp_path / "combined_labels.json"
    path.write_text(json.dumps({"cat/a.csv": [], "cat/b.csv": ["2014-02-19 10:50:00.000000"]}))
    with pytest.raises(LabelsError) as caught:
        load_windows(path)
    message = str(caught.value)
    assert message.startswith(
        f"{path}: cat/b.csv[0] is the single timestamp '2014-02-19 10:50:00.000000', "
        "not a [start, end] pair."
    )
    assert "labels file of single anomaly timestamps" in message
    assert "Pass the windows file instead, e.g. NAB's labels/combined_windows.json" in message


def test_load_windows_binary_file(tmp_path):
    path = tmp_path / "windows.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff")
    with pytest.raises(LabelsError) as caught:
        load_windows(path)
    message = str(caught.value)
    assert message.startswith(f"label file {path} is not UTF-8 text; pass ")
    assert "NAB combined_windows.json: a JSON object that maps each" in message
    assert '"<category>/<file>.csv" to a list of [start, end] timestamp pairs' in message
    assert "codec" not in message


def test_evaluate_lists_keys_not_in_input(windows):
    result = evaluate_windows(windows, ["cat/a.csv", "cat/typo.csv"], [])
    assert result.windows == 2
    assert result.keys_not_in_input == ("cat/b.csv", "other/c.csv")
    assert result.windows_not_in_input == 1
    assert result.entities_without_key == ("cat/typo.csv",)


def test_load_windows_missing_file(tmp_path):
    with pytest.raises(LabelsError, match="cannot read label file"):
        load_windows(tmp_path / "absent.json")
