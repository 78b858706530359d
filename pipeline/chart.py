"""PNG chart of a few entities' feature streams with detections and labelled events marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class EntityPanel:
    """One chart row: an entity's values of one feature, and which points to mark."""

    entity_id: str
    feature: str
    times: Sequence[datetime]
    values: Sequence[float]
    detected: Sequence[bool]
    labelled: Sequence[bool]
    title: str = ""


def draw(panels: Sequence[EntityPanel], path: Path, title: str) -> Path:
    """Draw one row per panel into a PNG at `path` (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(panels), 1, figsize=(11, 2.6 * len(panels)), squeeze=False, constrained_layout=True
    )
    for axis, panel in zip(axes[:, 0], panels, strict=True):
        axis.plot(
            panel.times,
            panel.values,
            color="#4c72b0",
            linewidth=0.8,
            marker=".",
            markersize=3,
            label=panel.feature,
        )
        labelled = [i for i, flag in enumerate(panel.labelled) if flag]
        detected = [i for i, flag in enumerate(panel.detected) if flag]
        axis.scatter(
            [panel.times[i] for i in labelled],
            [panel.values[i] for i in labelled],
            s=90,
            facecolors="none",
            edgecolors="#dd8452",
            linewidths=1.5,
            label="injected (label)",
            zorder=3,
        )
        axis.scatter(
            [panel.times[i] for i in detected],
            [panel.values[i] for i in detected],
            s=40,
            marker="x",
            color="#c44e52",
            label="detection",
            zorder=4,
        )
        axis.set_title(panel.title or f"{panel.entity_id}: {panel.feature}", fontsize=10)
        axis.set_ylabel(panel.feature)
        axis.legend(loc="upper left", fontsize=8)
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def panel_from_events(
    entity_id: str,
    feature: str,
    events: Sequence[tuple[datetime, str, Mapping[str, float]]],
    *,
    detected_ids: set[str],
    labelled_ids: set[str],
    title: str = "",
) -> EntityPanel:
    """Build a panel from (event_time, event_id, features) of one entity, sorted by time."""
    ordered = sorted(events, key=lambda item: (item[0], item[1]))
    return EntityPanel(
        entity_id=entity_id,
        feature=feature,
        times=[moment for moment, _, _ in ordered],
        values=[features.get(feature, float("nan")) for _, _, features in ordered],
        detected=[event_id in detected_ids for _, event_id, _ in ordered],
        labelled=[event_id in labelled_ids for _, event_id, _ in ordered],
        title=title,
    )
