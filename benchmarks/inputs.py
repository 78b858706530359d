"""Benchmark inputs: the demo's synthetic card stream, or events read from NAB CSV files."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pipeline.records import DeadLetter
from pipeline.sources import (
    NAB_FEATURE,
    InputError,
    check_nab_headers,
    input_kind,
    nab_files,
    read_nab_file,
)
from pipeline.synthetic import generate

DEMO_FEATURE: Final = "amount"
"""The feature Beam's ZScore row reads from demo events, which carry three."""

# pipeline.synthetic.generate gives about 89 events per card on average over its
# default 6 days, from a Poisson rate of 0.4 to 0.8 purchases an hour. A single card
# can give fewer than 60, so demo_input adds cards when a stream comes up short.
_EVENTS_PER_CARD: Final = 85
# The demo redelivers 12 payloads in about 2,150, so the benchmark keeps that share.
_DUPLICATE_SHARE: Final = 0.005


class BenchInputError(ValueError):
    """An invalid benchmark input setting or path."""


@dataclass(frozen=True)
class BenchInput:
    """Raw event payloads, the feature Beam's ZScore row reads, and where they come from."""

    payloads: tuple[bytes, ...]
    feature: str
    description: str
    reader_dead_letters: int = 0


def demo_input(events: int, seed: int) -> BenchInput:
    """Return the first `events` payloads of the demo's synthetic card stream.

    The stream is pipeline.synthetic's, as `make demo` runs it: three features per
    event, injected fraud patterns, a few invalid payloads, redelivered duplicates and
    light shuffling. The numbers of cards and of duplicates grow with `events`.
    """
    if events < 1:
        raise BenchInputError(f"events={events} is invalid; pass 1 or more")
    cards = math.ceil(events / _EVENTS_PER_CARD)
    duplicates = max(1, round(events * _DUPLICATE_SHARE))
    stream = generate(seed=seed, cards=cards, duplicates=duplicates)
    while len(stream.lines) < events:
        cards = math.ceil(cards * 1.25)
        stream = generate(seed=seed, cards=cards, duplicates=duplicates)
    payloads = tuple(line.encode("utf-8") for line in stream.lines[:events])
    description = (
        f"pipeline.synthetic demo stream, seed {seed}: the first {len(payloads)} of "
        f"{len(stream.lines)} payloads from {cards} cards ({stream.duplicates} redelivered, "
        f"{stream.invalid} invalid in the whole stream); Beam's ZScore reads {DEMO_FEATURE!r}"
    )
    return BenchInput(payloads=payloads, feature=DEMO_FEATURE, description=description)


def nab_input(path: Path, events: int) -> BenchInput:
    """Read up to `events` events from a NAB CSV file or directory, taking files in turn.

    Row n of every file comes before row n + 1 of any file, so a prefix of the
    result contains the start of every series rather than whole series from the
    first files. Rows the reader rejects (see read_nab_file) are counted,
    not benchmarked, because the pass-through and Beam rows could not read them.
    Reading stops once `events` rows are collected.
    """
    if events < 1:
        raise BenchInputError(f"events={events} is invalid; pass 1 or more")
    fix = "pass a NAB .csv file or a directory of NAB .csv files"
    # Checked here because input_kind's message also offers JSON Lines, which the
    # benchmark does not read.
    if not path.exists():
        raise BenchInputError(f"input {path} does not exist; {fix}")
    try:
        kind = input_kind(path)
        if kind == "nab":
            check_nab_headers(nab_files(path))
    except InputError as error:
        raise BenchInputError(str(error)) from None
    if kind != "nab":
        raise BenchInputError(f"input {path} is not NAB CSV; {fix}")

    files = nab_files(path)
    streams = [read_nab_file(entity_id, file) for entity_id, file in files]
    payloads: list[bytes] = []
    rejected = 0
    for row in _round_robin(streams):
        if isinstance(row, DeadLetter):
            rejected += 1
            continue
        payloads.append(row)
        if len(payloads) == events:
            break

    description = (
        f"NAB CSV {path}: the first {len(payloads)} rows of {len(files)} file(s) taken "
        f"in turn, one feature {NAB_FEATURE!r}"
    )
    return BenchInput(
        payloads=tuple(payloads),
        feature=NAB_FEATURE,
        description=description,
        reader_dead_letters=rejected,
    )


def _round_robin(
    streams: list[Iterator[bytes | DeadLetter]],
) -> Iterator[bytes | DeadLetter]:
    sentinel = object()
    for rows in itertools.zip_longest(*streams, fillvalue=sentinel):
        for row in rows:
            if row is not sentinel:
                yield row  # type: ignore[misc]


def write_jsonl(bench_input: BenchInput, path: Path) -> Path:
    """Write the payloads as JSON Lines, the file every pipeline row reads."""
    with path.open("wb") as stream:
        for payload in bench_input.payloads:
            stream.write(payload)
            stream.write(b"\n")
    return path
