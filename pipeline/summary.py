"""Run summary of a local run, read back from its output files and Beam metrics."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pipeline.graph import INPUT_STAGES
from pipeline.labels import Window, WindowEvaluation, evaluate_windows
from pipeline.records import DeadLetter, Detection, ScoredEvent

SCORED_FILE: Final = "scored_events.jsonl"
DETECTIONS_FILE: Final = "detections.jsonl"
DEAD_LETTER_FILE: Final = "dead_letter.jsonl"
# Maximum number of label keys or entities named after their count. The others are counted.
MAX_LISTED_NAMES: Final = 3


def count_noun(number: int, singular: str, plural: str | None = None) -> str:
    """Return `number` and `singular` when it is 1, else `plural` (default: `singular` + "s")."""
    if number == 1:
        return f"{number} {singular}"
    return f"{number} {plural or singular + 's'}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON Lines output file; a missing file reads as empty."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


@dataclass(frozen=True)
class RunSummary:
    """Counts of one run. `records_in` and `duplicates` come from Beam metrics."""

    records_in: int
    duplicates: int
    scored: int
    anomalies: int
    entities: int
    input_dead_letters: Counter[str]
    output_dead_letters: Counter[str]
    triage_status: Counter[str]
    triage_examples: tuple[Detection, ...] = ()
    windows: WindowEvaluation | None = None
    extra: dict[str, int] = field(default_factory=dict)
    # The input file or directory, named in the summary when it contains no records.
    input_path: Path | None = None

    @property
    def accounted(self) -> int:
        """Records that ended in scored events, the input dead letter or the duplicate count."""
        return self.scored + sum(self.input_dead_letters.values()) + self.duplicates

    @property
    def balanced(self) -> bool:
        """True when every input record ended in exactly one place."""
        return self.accounted == self.records_in

    def render(self) -> str:
        """Return the summary as the text the CLIs print."""
        lines: list[str] = []
        if self.records_in == 0:
            # An empty input is valid and exits 0, so the summary is where a user sees it.
            source = f"input {self.input_path}" if self.input_path is not None else "the input"
            lines.append(f"{source} contains no records, so nothing was scored")
        lines += [
            f"records read:        {self.records_in}",
            f"  scored events:     {self.scored} "
            f"({count_noun(self.entities, 'entity', 'entities')})",
            f"  dead letters:      {sum(self.input_dead_letters.values())}"
            + _breakdown(self.input_dead_letters),
            f"  duplicates:        {self.duplicates}",
            "  every record in exactly one place: "
            + ("yes" if self.balanced else f"NO ({self.accounted} accounted for)"),
            f"anomalies detected:  {self.anomalies}",
            "triage:              " + (_breakdown(self.triage_status).strip(" ()") or "none"),
        ]
        if self.output_dead_letters:
            lines.append(
                f"output dead letters: {sum(self.output_dead_letters.values())}"
                + _breakdown(self.output_dead_letters)
            )
        if self.windows is not None:
            evaluation = self.windows
            lines += [
                f"labelled windows:    {evaluation.windows_detected} of {evaluation.windows} "
                "with at least one detection (windows of the entities in this input)",
                f"detections outside every window: {evaluation.detections_outside} "
                f"of {evaluation.detections}",
            ]
            if evaluation.keys_not_in_input:
                lines.append(
                    f"label keys not in this input: {len(evaluation.keys_not_in_input)} "
                    f"with {count_noun(evaluation.windows_not_in_input, 'window')}, "
                    "not counted above: " + _names(evaluation.keys_not_in_input)
                )
            if evaluation.entities_without_key:
                lines.append(
                    f"entities with no label key: {len(evaluation.entities_without_key)}, "
                    "their detections count as outside: " + _names(evaluation.entities_without_key)
                )
        for detection in self.triage_examples:
            assert detection.triage is not None
            lines.append(
                f"  [{detection.triage.severity}] {detection.entity_id} "
                f"{detection.event_time:%Y-%m-%d %H:%M} score {detection.anomaly_score:.2f}: "
                f"{detection.triage.summary}"
            )
        return "\n".join(lines)


def _names(names: tuple[str, ...]) -> str:
    listed = ", ".join(names[:MAX_LISTED_NAMES])
    rest = len(names) - MAX_LISTED_NAMES
    return f"{listed} and {rest} more" if rest > 0 else listed


def _breakdown(counts: Counter[str]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{key}: {value}" for key, value in sorted(counts.items())) + ")"


def summarize(
    output_dir: Path,
    counters: dict[str, int],
    windows: dict[str, list[Window]] | None = None,
    max_examples: int = 3,
    input_entity_ids: Iterable[str] = (),
    *,
    input_path: Path | None = None,
) -> RunSummary:
    """Build the summary from the output files in `output_dir` and the metric counters.

    The windows of an entity count when it has scored events or is in
    `input_entity_ids` (a NAB file whose rows were all dead-lettered still counts).
    """
    scored = [ScoredEvent.from_json(row) for row in read_jsonl(output_dir / SCORED_FILE)]
    detections = [Detection.from_json(row) for row in read_jsonl(output_dir / DETECTIONS_FILE)]
    dead_letters = [DeadLetter.from_json(row) for row in read_jsonl(output_dir / DEAD_LETTER_FILE)]

    input_dead: Counter[str] = Counter()
    output_dead: Counter[str] = Counter()
    for letter in dead_letters:
        target = input_dead if letter.stage in INPUT_STAGES else output_dead
        target[f"{letter.stage}/{letter.error_code}"] += 1

    triage_status: Counter[str] = Counter(
        detection.triage.status if detection.triage else "none" for detection in detections
    )
    done = [d for d in detections if d.triage is not None and d.triage.status == "done"]
    done.sort(key=lambda detection: -detection.anomaly_score)

    entity_ids = {event.entity_id for event in scored}
    evaluation = None
    if windows is not None:
        evaluation = evaluate_windows(
            windows,
            entity_ids | set(input_entity_ids),
            ((d.entity_id, d.event_time) for d in detections),
        )
    return RunSummary(
        records_in=counters.get("events_in", 0),
        duplicates=counters.get("duplicates", 0),
        scored=len(scored),
        anomalies=sum(event.is_anomaly for event in scored),
        entities=len(entity_ids),
        input_dead_letters=input_dead,
        output_dead_letters=output_dead,
        triage_status=triage_status,
        triage_examples=tuple(done[:max_examples]),
        windows=evaluation,
        input_path=input_path,
    )
