"""Evaluation of detections against labelled anomaly windows (NAB combined_windows.json)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

Window = tuple[datetime, datetime]

LABELS_FORMAT = (
    "NAB combined_windows.json: a JSON object that maps each "
    '"<category>/<file>.csv" to a list of [start, end] timestamp pairs'
)


class LabelsError(ValueError):
    """A label file that cannot be read or breaks the windows format."""


def _parse_label_time(text: object, where: str) -> datetime:
    if not isinstance(text, str):
        raise LabelsError(f"{where}: {text!r} is not a timestamp string")
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise LabelsError(
            f"{where}: {text!r} is not a timestamp, e.g. 2014-02-19 10:50:00.000000"
        ) from None
    # NAB writes naive UTC times.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def load_windows(path: Path) -> dict[str, list[Window]]:
    """Read {"<category>/<file>.csv": [[start, end], ...]} into UTC windows per key.

    Raises LabelsError naming the file, the key and the fix.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LabelsError(f"cannot read label file {path}: {error.strerror}") from None
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise LabelsError(f"label file {path} is not UTF-8 text; pass {LABELS_FORMAT}") from None
    except json.JSONDecodeError as error:
        raise LabelsError(
            f"label file {path} is not valid JSON ({error.msg} at line {error.lineno}); "
            f"pass {LABELS_FORMAT}"
        ) from None
    if not isinstance(document, dict):
        raise LabelsError(f"label file {path} is not a JSON object; pass {LABELS_FORMAT}")

    windows: dict[str, list[Window]] = {}
    for key, spans in document.items():
        if not isinstance(spans, list):
            raise LabelsError(f"{path}: {key!r} must map to a list of [start, end] pairs")
        parsed: list[Window] = []
        for index, span in enumerate(spans):
            where = f"{path}: {key}[{index}]"
            if isinstance(span, str):
                raise LabelsError(
                    f"{where} is the single timestamp {span!r}, not a [start, end] pair. "
                    "This looks like a labels file of single anomaly timestamps, such as "
                    "NAB's combined_labels.json. Pass the windows file instead, e.g. "
                    "NAB's labels/combined_windows.json"
                )
            if not (isinstance(span, list) and len(span) == 2):
                raise LabelsError(f"{where} must be a [start, end] pair")
            start = _parse_label_time(span[0], where)
            end = _parse_label_time(span[1], where)
            if end < start:
                raise LabelsError(f"{where} ends before it starts")
            parsed.append((start, end))
        windows[key] = parsed
    return windows


def match_keys(windows: Mapping[str, list[Window]], entity_ids: Iterable[str]) -> dict[str, str]:
    """Map each entity_id to its label key: the same string, else the unique key ending in it.

    A single NAB file run on its own has its file name as entity_id, but the label keys
    carry the category directory. The suffix match links the two.
    """
    mapping: dict[str, str] = {}
    for entity_id in entity_ids:
        if entity_id in windows:
            mapping[entity_id] = entity_id
            continue
        candidates = [key for key in windows if key.endswith("/" + entity_id)]
        if len(candidates) == 1:
            mapping[entity_id] = candidates[0]
    return mapping


@dataclass(frozen=True)
class WindowEvaluation:
    """Detections matched against the labelled windows of the entities that were run."""

    windows: int
    windows_detected: int
    detections: int
    detections_outside: int
    # Label keys that match no entity of the input (a mistyped key shows up here), and
    # their window count. Those windows are not in `windows`.
    keys_not_in_input: tuple[str, ...] = ()
    windows_not_in_input: int = 0
    # Entities of the input that match no label key. Their detections count as outside.
    entities_without_key: tuple[str, ...] = ()

    @property
    def window_recall(self) -> float:
        """Share of labelled windows with at least one detection (0 when there are none)."""
        return self.windows_detected / self.windows if self.windows else 0.0


def evaluate_windows(
    windows: Mapping[str, list[Window]],
    entity_ids: Iterable[str],
    detections: Iterable[tuple[str, datetime]],
) -> WindowEvaluation:
    """Count windows hit and detections outside every window.

    Only windows of entities in `entity_ids` (those in the input) count. The others are
    listed in `keys_not_in_input`. A detection of an entity without a label key counts
    as outside.
    """
    input_ids = set(entity_ids)
    keys = match_keys(windows, input_ids)
    hit: set[tuple[str, int]] = set()
    total_detections = 0
    outside = 0
    for entity_id, moment in detections:
        total_detections += 1
        key = keys.get(entity_id)
        spans = windows.get(key, []) if key else []
        inside = [index for index, (start, end) in enumerate(spans) if start <= moment <= end]
        if not inside:
            outside += 1
        hit.update((key, index) for index in inside if key)
    matched = set(keys.values())
    unmatched = sorted(set(windows) - matched)
    return WindowEvaluation(
        windows=sum(len(windows[key]) for key in matched),
        windows_detected=len(hit),
        detections=total_detections,
        detections_outside=outside,
        keys_not_in_input=tuple(unmatched),
        windows_not_in_input=sum(len(windows[key]) for key in unmatched),
        entities_without_key=tuple(sorted(input_ids - set(keys))),
    )
