"""Local inputs: JSON Lines event files and NAB-style CSV files, read into raw payloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from pipeline.records import DeadLetter, format_timestamp

InputKind = Literal["jsonl", "nab"]

STAGE: Final = "read"
INVALID_CSV_ROW: Final = "invalid_csv_row"
NAB_FEATURE: Final = "value"
NAB_TIME_FORMATS: Final = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S")


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
    "event_time": <row time as UTC>, "features": {"value": <value>}}``.
    """
    text = path.read_text(encoding="utf-8")
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None:
        return
    columns = [name.strip() for name in header]
    if columns[:2] != ["timestamp", "value"]:
        raise InputError(
            f"{path}: header is {','.join(columns)!r}; NAB files start with 'timestamp,value'"
        )
    for line_number, row in enumerate(rows, start=2):
        if not row:
            continue
        try:
            if len(row) < 2:
                raise ValueError(f"expected 2 columns, got {len(row)}")
            event_time = parse_nab_time(row[0])
            value = float(row[1])
        except ValueError as error:
            yield DeadLetter.for_payload(
                ",".join(row),
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
