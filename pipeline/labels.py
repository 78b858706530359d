"""Evaluation of detections against labelled anomaly windows (NAB combined_windows.json)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

Window = tuple[datetime, datetime]


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
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise LabelsError(f"cannot read label file {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise LabelsError(f"label file {path} is not valid JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise LabelsError(
            f"label file {path} must be a JSON object of file name to [[start, end], ...]"
        )

    windows: dict[str, list[Window]] = {}
    for key, spans in document.items():
        if not isinstance(spans, list):
            raise LabelsError(f"{path}: {key!r} must map to a list of [start, end] pairs")
        parsed: list[Window] = []
        for index, span in enumerate(spans):
            where = f"{path}: {key}[{index}]"
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

    Only windows of entities in `entity_ids` (those in the input) count. A detection of
    an entity without a label key counts as outside.
    """
    keys = match_keys(windows, entity_ids)
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
    total_windows = sum(len(windows[key]) for key in set(keys.values()))
    return WindowEvaluation(
        windows=total_windows,
        windows_detected=len(hit),
        detections=total_detections,
        detections_outside=outside,
    )
