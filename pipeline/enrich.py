"""Beam stage that joins per-entity context to events with Beam's Enrichment transform.

The source is Bigtable on Dataflow (BigTableEnrichmentHandler, row key = entity_id) or a
JSON Lines features file locally (JsonLinesEnrichmentHandler). Both run through the same
``Enrichment`` transform, and the joined fields land in ``Event.context``.

Missing rows: the event passes through with an empty context and the
``enrichment_missing`` counter grows, because a new entity without a profile must still
be scored. Failed lookups: Beam makes up to three attempts with exponential backoff on
timeouts and quota errors, and the Bigtable client also retries transient errors itself.
When the source still fails, the event goes to the dead letter with stage ``enrich`` and
code ``enrichment_failed`` so it can be replayed.
"""

# Beam's DoFn and metric methods carry no annotations.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import apache_beam as beam
from apache_beam.io.requestresponse import ExponentialBackOffRepeater, Repeater
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import DoOutputsTuple, PCollection, Row, TaggedOutput
from apache_beam.transforms.enrichment import Enrichment, EnrichmentSourceHandler

from pipeline import metrics
from pipeline.records import DeadLetter, Event

_LOG = logging.getLogger(__name__)

EVENTS: Final = "events"
DEAD_LETTERS: Final = "dead_letters"
STAGE: Final = "enrich"
ENRICHMENT_FAILED: Final = "enrichment_failed"
ROW_KEY: Final = "entity_id"

# Field of the response row that carries a lookup error instead of context.
_ERROR_FIELD: Final = "_enrichment_error"


class FeaturesFileError(ValueError):
    """A features file that cannot be read or breaks its format."""


def load_features_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read a JSON Lines features file: one object per line with `entity_id` and its fields.

    Raises FeaturesFileError naming the file, the line and the fix.
    """
    # utf-8-sig also drops a byte order mark, as the event contract does for events.
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise FeaturesFileError(
            f"features file {path} is not UTF-8 (invalid byte at offset {error.start}); "
            "save it as UTF-8 JSON Lines"
        ) from None
    except OSError as error:
        raise FeaturesFileError(f"cannot read features file {path}: {error}") from None

    table: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise FeaturesFileError(
                f"{path}:{number}: invalid JSON ({error.msg}); write one JSON object per line"
            ) from None
        entity_id = row.get(ROW_KEY) if isinstance(row, dict) else None
        if not isinstance(entity_id, str) or not entity_id:
            raise FeaturesFileError(
                f"{path}:{number}: each line needs a non-empty string {ROW_KEY!r}"
            )
        if entity_id in table:
            raise FeaturesFileError(f"{path}:{number}: entity_id {entity_id!r} appears twice")
        table[entity_id] = {key: value for key, value in row.items() if key != ROW_KEY}
    return table


class JsonLinesEnrichmentHandler(EnrichmentSourceHandler[Row, Row]):  # type: ignore[misc]
    """Enrichment source that looks entity_ids up in a features table loaded in memory."""

    def __init__(self, table: Mapping[str, Mapping[str, Any]]) -> None:
        self._table = {key: dict(value) for key, value in table.items()}

    # Beam's Enrichment handlers return (request, response), not the Caller's plain response.
    def __call__(  # type: ignore[override]
        self, request: Row, *args: Any, **kwargs: Any
    ) -> tuple[Row, Row]:
        fields = self._table.get(getattr(request, ROW_KEY), {})
        return request, Row(**fields)

    def get_cache_key(self, request: Row) -> str:
        return f"{ROW_KEY}: {getattr(request, ROW_KEY)}"


def bigtable_handler(project: str, instance: str, table: str) -> EnrichmentSourceHandler[Row, Row]:
    """Return Beam's Bigtable handler keyed by entity_id, quiet about missing rows."""
    from apache_beam.transforms.enrichment_handlers.bigtable import BigTableEnrichmentHandler
    from apache_beam.transforms.enrichment_handlers.utils import ExceptionLevel

    return BigTableEnrichmentHandler(
        project_id=project,
        instance_id=instance,
        table_id=table,
        row_key=ROW_KEY,
        # Missing rows are counted in this module instead of logged per event.
        exception_level=ExceptionLevel.QUIET,
    )


class _DeadLetterRepeater(Repeater):  # type: ignore[misc]
    """Retry like Beam's default repeater, then turn the final error into a response row."""

    def __init__(self) -> None:
        self._inner = ExponentialBackOffRepeater()

    def repeat(  # type: ignore[override]
        self,
        caller: Any,
        request: Row,
        timeout: float,
        metrics_collector: Any = None,
    ) -> tuple[Row, Row]:
        try:
            response: tuple[Row, Row] = self._inner.repeat(
                caller, request, timeout, metrics_collector
            )
        # Any source error must not stop a streaming job; the event is dead-lettered.
        except Exception as error:
            _LOG.warning(
                "enrichment lookup failed for entity_id %r: %s", getattr(request, ROW_KEY), error
            )
            return request, Row(**{_ERROR_FIELD: f"{type(error).__name__}: {error}"})
        return response


def _to_request(event: Event) -> Row:
    return Row(entity_id=event.entity_id, event=event)


def _join(request: dict[str, Any], response: dict[str, Any]) -> Row:
    """Join the response fields into the event's context, or carry the lookup error."""
    event: Event = request["event"]
    error = response.get(_ERROR_FIELD)
    if error is not None:
        return Row(event=event, error=str(error), found=False)
    return Row(event=dataclasses.replace(event, context=response), error="", found=bool(response))


class _SplitDoFn(beam.DoFn):  # type: ignore[misc]
    def __init__(self) -> None:
        self._enriched = Metrics.counter(metrics.NAMESPACE, metrics.ENRICHED)
        self._missing = Metrics.counter(metrics.NAMESPACE, metrics.ENRICHMENT_MISSING)
        self._failed = Metrics.counter(metrics.NAMESPACE, metrics.ENRICHMENT_FAILED)

    def process(self, row: Any) -> Iterator[Any]:
        event: Event = row.event
        if row.error:
            self._failed.inc()
            yield TaggedOutput(
                DEAD_LETTERS,
                DeadLetter.for_payload(
                    event.to_json_line(),
                    error_code=ENRICHMENT_FAILED,
                    error_message=(
                        f"enrichment lookup for entity_id {event.entity_id!r} failed after "
                        f"retries: {row.error}; check the source and replay the event"
                    ),
                    stage=STAGE,
                    event_id=event.event_id,
                ),
            )
            return
        if row.found:
            self._enriched.inc()
        else:
            self._missing.inc()
        yield event


class EnrichEvents(beam.PTransform[PCollection[Event], DoOutputsTuple]):  # type: ignore[misc]
    """Join each Event with its entity's row from `handler` into `Event.context`.

    Outputs (tags): EVENTS, every event that was looked up (found or missing);
    DEAD_LETTERS, events whose lookup failed.
    """

    def __init__(self, handler: EnrichmentSourceHandler[Row, Row]) -> None:
        super().__init__()
        self._handler = handler

    def expand(self, events: PCollection[Event]) -> DoOutputsTuple:
        joined = (
            events
            | "ToRequest" >> beam.Map(_to_request)
            | "Lookup" >> Enrichment(self._handler, join_fn=_join, repeater=_DeadLetterRepeater())
        )
        outputs: DoOutputsTuple = joined | "Split" >> beam.ParDo(_SplitDoFn()).with_outputs(
            DEAD_LETTERS, main=EVENTS
        )
        return outputs
