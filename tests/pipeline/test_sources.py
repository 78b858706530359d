"""Tests for the local readers: JSON Lines and NAB CSV (constructed and real files)."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

import gzip
from pathlib import Path

import pytest

from pipeline.contract import parse_event
from pipeline.records import DeadLetter
from pipeline.sources import (
    InputError,
    check_jsonl_start,
    check_nab_headers,
    input_kind,
    nab_files,
    read_jsonl,
    read_nab_file,
)

NAB_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nab"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_nab_rows_become_valid_events(tmp_path):
    path = write(
        tmp_path / "a.csv", "timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,2\n"
    )
    records = list(read_nab_file("cat/a.csv", path))
    events = [parse_event(record) for record in records if isinstance(record, bytes)]
    assert len(events) == len(records)
    assert [event.event_id for event in events] == ["cat/a.csv:2", "cat/a.csv:3"]
    assert events[0].event_time.isoformat() == "2014-04-01T00:00:00+00:00"
    assert events[1].features == {"value": 2.0}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2014-04-01,1.0", "not in NAB format"),
        ("2014-04-01 00:00:00,abc", "value 'abc' is not a number; write a decimal number"),
        ("2014-04-01 00:00:00,", "value '' is not a number; write a decimal number"),
        ("2014-04-01 00:00:00", "expected 2 columns"),
        ("2014-01-01 00:10:00,3,4", "expected 2 columns (timestamp,value), got 3"),
    ],
)
def test_nab_bad_rows_are_dead_lettered(tmp_path, row, message):
    path = write(tmp_path / "a.csv", f"timestamp,value\n{row}\n")
    (record,) = read_nab_file("a.csv", path)
    assert isinstance(record, DeadLetter)
    assert record.error_code == "invalid_csv_row"
    assert record.stage == "read"
    assert "a.csv:2" in record.error_message
    assert message in record.error_message


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "Infinity", "1e400"])
def test_nab_non_finite_value_is_invalid_row(tmp_path, value):
    path = write(tmp_path / "a.csv", f"timestamp,value\n2014-04-01 00:00:00,{value}\n")
    (record,) = read_nab_file("a.csv", path)
    assert isinstance(record, DeadLetter)
    assert record.error_code == "invalid_csv_row"
    assert record.stage == "read"
    assert record.error_message.startswith(f"{path}:2: value {value!r} is not a finite number")
    assert "write a finite number such as 1.5, or remove the row" in record.error_message


def test_nab_wrong_header(tmp_path):
    path = write(tmp_path / "a.csv", "time,v\n")
    with pytest.raises(InputError, match="timestamp,value"):
        list(read_nab_file("a.csv", path))


def test_nab_non_utf8_row_is_dead_lettered(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"timestamp,value\n2014-04-01 00:00:00,\xff1\n2014-04-01 00:05:00,2\n")
    letter, event = read_nab_file("a.csv", path)
    assert isinstance(letter, DeadLetter)
    assert letter.error_code == "invalid_csv_row"
    assert "a.csv:2: row is not UTF-8 text" in letter.error_message
    assert letter.payload_encoding == "base64"
    assert isinstance(event, bytes)
    assert parse_event(event).event_id == "a.csv:3"


def test_nab_header_with_byte_order_mark(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,value\n2014-04-01 00:00:00,1\n")
    check_nab_headers(nab_files(path))
    (record,) = read_nab_file("a.csv", path)
    assert isinstance(record, bytes)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"time,v\n", "header is 'time,v'"),
        (b"timestamp,value,label\n", "header is 'timestamp,value,label'"),
        (b"", "has no header line"),
        (b"\xfftimestamp,value\n", "is not UTF-8 text"),
    ],
)
def test_check_nab_headers_rejects(tmp_path, content, message):
    path = tmp_path / "a.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        check_nab_headers(nab_files(path))
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert "start with 'timestamp,value'" in str(caught.value)


def test_check_nab_headers_json_line_suggests_jsonl(tmp_path):
    path = write(tmp_path / "events.csv", '{"event_id": "e-1", "entity_id": "a"}\n')
    with pytest.raises(InputError) as caught:
        check_nab_headers(nab_files(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: first line starts with '{{' like JSON Lines")
    assert "NAB CSV files start with 'timestamp,value'" in message
    assert "rename it to end in .jsonl" in message


def test_check_nab_headers_lists_every_bad_file(tmp_path):
    write(tmp_path / "good.csv", "timestamp,value\n")
    for index in range(7):
        write(tmp_path / f"bad{index}.csv", "time,v\n")
    with pytest.raises(InputError) as caught:
        check_nab_headers(nab_files(tmp_path))
    message = str(caught.value)
    assert message.startswith("7 input files are not NAB CSV:")
    assert str(tmp_path / "bad0.csv") in message
    assert str(tmp_path / "bad4.csv") in message
    assert "bad5.csv" not in message
    assert "and 2 more" in message
    assert "good.csv" not in message


def test_nab_files_use_relative_paths(tmp_path):
    write(tmp_path / "b" / "y.csv", "timestamp,value\n")
    write(tmp_path / "a" / "x.csv", "timestamp,value\n")
    assert [entity for entity, _ in nab_files(tmp_path)] == ["a/x.csv", "b/y.csv"]
    assert nab_files(tmp_path / "a" / "x.csv")[0][0] == "x.csv"


def test_input_kind(tmp_path):
    assert input_kind(write(tmp_path / "e.jsonl", "{}\n")) == "jsonl"
    assert input_kind(write(tmp_path / "d" / "x.csv", "timestamp,value\n")) == "nab"
    assert input_kind(tmp_path / "d") == "nab"


@pytest.mark.parametrize("name", ["absent.jsonl", "empty_dir"])
def test_input_kind_errors(tmp_path, name):
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match=name):
        input_kind(tmp_path / name)


def test_input_kind_jsonl_directory_names_file(tmp_path):
    write(tmp_path / "d" / "events.jsonl", "{}\n")
    with pytest.raises(InputError) as caught:
        input_kind(tmp_path / "d")
    message = str(caught.value)
    assert f"input directory {tmp_path / 'd'} contains no .csv file" in message
    assert "a JSON Lines input must be passed as a file, not a directory" in message
    assert f"e.g. --input {tmp_path / 'd' / 'events.jsonl'}" in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("taxi.txt", b"timestamp,value\n2014-04-01 00:00:00,1\n"),
        ("taxi.jsonl", b"\xef\xbb\xbftimestamp, value\n"),
        ("taxi.json", b"\n  \ntimestamp,value\n"),
        ("prices.txt", b'"date","open","close"\n'),
    ],
)
def test_check_jsonl_start_rejects_csv_header(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        check_jsonl_start(path)
    message = str(caught.value)
    assert message.startswith(f"input {path} is read as JSON Lines because its name does not")
    assert "looks like a CSV header" in message
    assert "rename it to end in .csv" in message


def test_check_jsonl_start_reads_gzip(tmp_path):
    path = tmp_path / "taxi.csv.gz"
    path.write_bytes(gzip.compress(b"timestamp,value\n2014-04-01 00:00:00,1\n"))
    with pytest.raises(InputError) as caught:
        check_jsonl_start(path)
    assert "'timestamp,value' looks like a CSV header" in str(caught.value)
    assert "decompress it to a file that ends in .csv" in str(caught.value)


def test_check_jsonl_start_corrupt_gzip(tmp_path):
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(b"not gzip data\n")
    with pytest.raises(InputError) as caught:
        check_jsonl_start(path)
    assert str(caught.value).startswith(f"cannot read input {path} as gzip-compressed")


@pytest.mark.parametrize(
    "content",
    [
        b'{"event_id": "e-1"}\ntimestamp,value\n',
        b"",
        b"\n \n",
        b"{broken\n",
        b"timestamp\n",
        b"2014-04-01 00:00:00,1\n",
        b"\xff\xfe,\n",
    ],
)
def test_check_jsonl_start_accepts_non_header(tmp_path, content):
    path = tmp_path / "events.jsonl"
    path.write_bytes(content)
    check_jsonl_start(path)


def test_jsonl_keeps_raw_bytes_and_skips_blank(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a": 1}\r\n\n   \n\xff\xfe\n')
    assert list(read_jsonl(path)) == [b'{"a": 1}', b"\xff\xfe"]


@pytest.mark.skipif(not NAB_ROOT.exists(), reason="NAB data not found next to the repository")
def test_real_nab_file_parses():
    path = NAB_ROOT / "data" / "realKnownCause" / "nyc_taxi.csv"
    records = list(read_nab_file("realKnownCause/nyc_taxi.csv", path))
    assert len(records) == 10320
    assert not any(isinstance(record, DeadLetter) for record in records)
    assert isinstance(records[0], bytes)
    first = parse_event(records[0])
    assert first.event_time.isoformat() == "2014-07-01T00:00:00+00:00"
    assert first.features == {"value": 10844.0}
