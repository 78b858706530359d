"""Local inputs: JSON Lines event files and NAB-style CSV files, read into raw payloads."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

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


class InputError(ValueError):
    """An input path that cannot be read as JSON Lines or NAB CSV."""


def input_kind(path: Path) -> InputKind:
    """Return "nab" for a .csv file or a directory, "jsonl" for any other file.

    Raises InputError when the path does not exist or a directory contains no CSV file.
    """
    if path.is_dir():
        if not any(path.rglob("*.csv")):
            raise InputError(f"input directory {path} contains no .csv file; pass NAB CSV files")
        return "nab"
    if not path.is_file():
        raise InputError(f"input {path} does not exist; pass a JSON Lines file or NAB CSV input")
    return "nab" if path.suffix.lower() == ".csv" else "jsonl"


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


def read_nab_file(entity_id: str, path: Path) -> Iterator[bytes | DeadLetter]:
    """Yield one event payload per row of a NAB CSV (`timestamp,value`), or a DeadLetter.

    Each row becomes ``{"event_id": "<entity_id>:<line>", "entity_id": entity_id,
    "event_time": <row time as UTC>, "features": {"value": <value>}}``. A row that is not
    exactly a timestamp and a number, or is not UTF-8, becomes an ``invalid_csv_row``
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
                # Non-finite values pass through so that the parser dead-letters them.
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
    return parse_nab_time(row[0]), float(row[1])
