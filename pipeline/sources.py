"""Local inputs: JSON Lines event files and NAB-style CSV files, read into raw payloads."""

from __future__ import annotations

import csv
import json
import lzma
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.records import DeadLetter, format_timestamp

InputKind = Literal["jsonl", "nab"]

STAGE: Final = "read"
INVALID_CSV_ROW: Final = "invalid_csv_row"
NAB_FEATURE: Final = "value"
NAB_TIME_FORMATS: Final = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S")
NAB_HEADER: Final = ("timestamp", "value")
# The utf-8-sig codec also accepts UTF-8 with a byte-order mark, as spreadsheets write it.
NAB_ENCODING: Final = "utf-8-sig"
# Maximum number of bad files that one InputError names. It counts the others.
_MAX_LISTED_FILES: Final = 5
# Suffixes that mark a JSON Lines file inside a directory input, for the error message.
_JSONL_SUFFIXES: Final = frozenset({".jsonl", ".ndjson", ".json"})
# A CSV header column name: a word that may contain spaces, dots or dashes.
_CSV_COLUMN_NAME: Final = re.compile(r"[A-Za-z_][\w .-]*")
# Errors that Beam's decompressors raise on a corrupt or truncated file.
_DECOMPRESSION_ERRORS: Final = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
)


class InputError(ValueError):
    """An input path that cannot be read as JSON Lines or NAB CSV."""


def input_kind(path: Path) -> InputKind:
    """Return "nab" for a .csv file or a directory, "jsonl" for any other file.

    Raises InputError when the path does not exist or a directory contains no CSV file.
    """
    if path.is_dir():
        if not any(path.rglob("*.csv")):
            raise InputError(_no_csv_message(path))
        return "nab"
    if not path.is_file():
        raise InputError(f"input {path} does not exist; pass a JSON Lines file or NAB CSV input")
    return "nab" if path.suffix.lower() == ".csv" else "jsonl"


def _no_csv_message(directory: Path) -> str:
    message = (
        f"input directory {directory} contains no .csv file; a directory input must hold "
        "NAB CSV files, and a JSON Lines input must be passed as a file, not a directory"
    )
    jsonl_files = sorted(
        file
        for file in directory.rglob("*")
        if file.is_file() and _JSONL_SUFFIXES & {suffix.lower() for suffix in file.suffixes}
    )
    if jsonl_files:
        message += f", e.g. --input {jsonl_files[0]}"
    return message


def _looks_like_csv_header(line: str) -> bool:
    """Return True when `line` is two or more comma-separated names, e.g. "timestamp,value".

    No valid JSON text has that form, so a JSON Lines input that starts with such a
    line is most likely a CSV file under another suffix.
    """
    columns = next(csv.reader([line]), [])
    return len(columns) >= 2 and all(
        _CSV_COLUMN_NAME.fullmatch(column.strip()) for column in columns
    )


def check_jsonl_start(path: Path) -> None:
    """Raise InputError when the first non-blank line of a JSON Lines input is a CSV header.

    The file is read as the pipeline reads it, decompressed by Beam when its name ends
    in a compression suffix such as .gz. Without this check every row of a CSV file
    named e.g. taxi.txt would become an invalid_json dead letter.
    """
    # Beam's CompressionTypes carries no annotations.
    compression: str = CompressionTypes.detect_compression_type(str(path))  # type: ignore[no-untyped-call]
    try:
        first_line = _first_non_blank_line(path)
    except _DECOMPRESSION_ERRORS as error:
        raise InputError(
            f"cannot read input {path} as {compression}-compressed JSON Lines: {error}; "
            "pass an intact file, or rename it so that its suffix names its compression"
        ) from None
    if first_line is None:
        return
    text = first_line.decode(NAB_ENCODING, errors="replace").strip()
    if not _looks_like_csv_header(text):
        return
    if compression == CompressionTypes.UNCOMPRESSED:
        fix = "if it is a NAB CSV file (timestamp,value), rename it to end in .csv"
    else:
        fix = (
            "if it is a NAB CSV file (timestamp,value), decompress it to a file that ends "
            "in .csv, because NAB CSV input is read uncompressed"
        )
    raise InputError(
        f"input {path} is read as JSON Lines because its name does not end in .csv, but "
        f"its first line {text!r} looks like a CSV header; {fix}"
    )


def _first_non_blank_line(path: Path) -> bytes | None:
    with FileSystems.open(str(path)) as stream:
        for line in iter(stream.readline, b""):
            if line.strip():
                return bytes(line)
    return None


def nab_header_error(path: Path) -> str | None:
    """Return why `path` does not start with the NAB header line, or None when it does.

    Only the first line is read. Rows are checked later, one at a time, by read_nab_file.
    """
    expected = ",".join(NAB_HEADER)
    try:
        with path.open("rb") as stream:
            first_line = stream.readline()
    except OSError as error:
        return f"cannot read {path}: {error.strerror}"
    if not first_line.strip():
        return f"{path} has no header line; NAB CSV files start with {expected!r}"
    try:
        text = first_line.decode(NAB_ENCODING)
    except UnicodeDecodeError:
        return f"{path} is not UTF-8 text; NAB CSV files are UTF-8 and start with {expected!r}"
    if text.lstrip().startswith("{"):
        return (
            f"{path}: first line starts with '{{' like JSON Lines, but NAB CSV files start "
            f"with {expected!r}; if it holds JSON Lines events, rename it to end in .jsonl, "
            "because the input format is chosen by the file suffix"
        )
    columns = tuple(name.strip() for name in next(csv.reader([text])))
    if columns != NAB_HEADER:
        return f"{path}: header is {','.join(columns)!r}; NAB CSV files start with {expected!r}"
    return None


def check_nab_headers(files: Iterable[tuple[str, Path]]) -> None:
    """Raise InputError listing every file whose first line is not the NAB header.

    Run it before the pipeline, because a bad header inside the pipeline fails the
    whole run, while a bad row only becomes a dead letter.
    """
    errors = [error for _, path in files if (error := nab_header_error(path)) is not None]
    if not errors:
        return
    if len(errors) == 1:
        raise InputError(errors[0])
    listed = errors[:_MAX_LISTED_FILES]
    if len(errors) > len(listed):
        listed.append(f"and {len(errors) - len(listed)} more")
    raise InputError(f"{len(errors)} input files are not NAB CSV:\n  " + "\n  ".join(listed))


def nab_files(path: Path) -> list[tuple[str, Path]]:
    """Return (entity_id, file) for each CSV under `path`, sorted by entity_id.

    The entity_id is the file's path relative to the input directory ("realKnownCause/
    nyc_taxi.csv"), which is also the key of NAB's label files. For a single file it is
    the file name.
    """
    if path.is_file():
        return [(path.name, path)]
    return sorted((file.relative_to(path).as_posix(), file) for file in path.rglob("*.csv"))


def read_jsonl(path: Path) -> Iterator[bytes]:
    """Yield each non-blank line of a JSON Lines file as raw bytes (not decoded)."""
    with path.open("rb") as stream:
        for line in stream:
            payload = line.rstrip(b"\r\n")
            if payload.strip():
                yield payload


def parse_nab_time(text: str) -> datetime:
    """Parse a NAB timestamp such as "2014-04-01 00:00:00" as UTC."""
    for pattern in NAB_TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"timestamp {text!r} is not in NAB format, e.g. 2014-04-01 00:00:00")


def parse_nab_value(text: str) -> float:
    """Parse a NAB value as a finite float, or raise ValueError naming the value and the fix.

    NaN and infinity are rejected here, so that every bad CSV row is an invalid_csv_row
    dead letter of the reader rather than a parse error of its generated JSON.
    """
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"value {text!r} is not a number; write a decimal number such as 1.5"
        ) from None
    if not math.isfinite(value):
        raise ValueError(
            f"value {text!r} is not a finite number (NaN, infinity or beyond the range of "
            "a 64-bit float); write a finite number such as 1.5, or remove the row"
        )
    return value


def read_nab_file(entity_id: str, path: Path) -> Iterator[bytes | DeadLetter]:
    """Yield one event payload per row of a NAB CSV (`timestamp,value`), or a DeadLetter.

    Each row becomes ``{"event_id": "<entity_id>:<line>", "entity_id": entity_id,
    "event_time": <row time as UTC>, "features": {"value": <value>}}``. A row that is not
    exactly a timestamp and a finite number, or is not UTF-8, becomes an ``invalid_csv_row``
    dead letter with the row's bytes. Raises InputError when the header is not
    `timestamp,value` (check_nab_headers finds that before a run).
    """
    header_error = nab_header_error(path)
    if header_error is not None:
        raise InputError(header_error)
    # surrogateescape keeps bytes that are not UTF-8, so such a row reaches the dead
    # letter as it was in the file instead of failing the whole file.
    with path.open(encoding=NAB_ENCODING, errors="surrogateescape", newline="") as stream:
        rows = csv.reader(stream)
        next(rows)
        for row in rows:
            if not row:
                continue
            line_number = rows.line_num
            try:
                event_time, value = _parse_nab_row(row)
            except ValueError as error:
                yield DeadLetter.for_payload(
                    ",".join(row).encode("utf-8", "surrogateescape"),
                    error_code=INVALID_CSV_ROW,
                    error_message=f"{path}:{line_number}: {error}",
                    stage=STAGE,
                )
                continue
            payload = {
                "event_id": f"{entity_id}:{line_number}",
                "entity_id": entity_id,
                "event_time": format_timestamp(event_time),
                "features": {NAB_FEATURE: value},
            }
            yield json.dumps(payload).encode("utf-8")


def _parse_nab_row(row: list[str]) -> tuple[datetime, float]:
    text = ",".join(row)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("row is not UTF-8 text") from None
    if len(row) != len(NAB_HEADER):
        raise ValueError(
            f"expected {len(NAB_HEADER)} columns ({','.join(NAB_HEADER)}), got {len(row)}"
        )
    return parse_nab_time(row[0]), parse_nab_value(row[1])
