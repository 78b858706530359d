"""Tests for enrichment through Beam's Enrichment transform with the local handler."""

# Beam's pipeline APIs carry no annotations, and test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.pvalue import Row
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.enrichment import EnrichmentSourceHandler

from pipeline.enrich import (
    DEAD_LETTERS,
    EVENTS,
    EnrichEvents,
    FeaturesFileError,
    JsonLinesEnrichmentHandler,
    load_features_file,
)
from pipeline.records import Event

MOMENT = datetime(2024, 5, 1, tzinfo=UTC)
EVENTS_IN = [
    Event("e1", "card-1", MOMENT, {"v": 1.0}),
    Event("e2", "card-2", MOMENT, {"v": 2.0}),
]


def test_found_and_missing_rows():
    handler = JsonLinesEnrichmentHandler({"card-1": {"segment": "gold", "limit": 500}})
    with beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create(EVENTS_IN) | EnrichEvents(handler)
        assert_that(
            outputs[EVENTS] | beam.Map(lambda event: (event.event_id, dict(event.context))),
            equal_to([("e1", {"segment": "gold", "limit": 500}), ("e2", {})]),
        )
        assert_that(outputs[DEAD_LETTERS], equal_to([]), label="no dead letters")


class FailingHandler(EnrichmentSourceHandler[Row, Row]):
    def __call__(self, request, *args, **kwargs):
        raise ConnectionError("source unreachable")


def test_failed_lookup_is_dead_lettered():
    with beam.Pipeline() as pipeline:
        outputs = pipeline | beam.Create(EVENTS_IN[:1]) | EnrichEvents(FailingHandler())
        assert_that(outputs[EVENTS], equal_to([]))
        assert_that(
            outputs[DEAD_LETTERS]
            | beam.Map(
                lambda letter: (
                    letter.event_id,
                    letter.stage,
                    letter.error_code,
                    "source unreachable" in letter.error_message,
                )
            ),
            equal_to([("e1", "enrich", "enrichment_failed", True)]),
            label="dead letters",
        )


def test_handler_returns_request_and_row():
    handler = JsonLinesEnrichmentHandler({"card-1": {"segment": "gold"}})
    request = Row(entity_id="card-1", event=EVENTS_IN[0])
    _, response = handler(request)
    assert response._asdict() == {"segment": "gold"}
    assert handler.get_cache_key(request) == "entity_id: card-1"


def test_load_features_file(tmp_path):
    path = tmp_path / "features.jsonl"
    path.write_text('{"entity_id": "card-1", "segment": "gold"}\n\n{"entity_id": "card-2"}\n')
    assert load_features_file(path) == {"card-1": {"segment": "gold"}, "card-2": {}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{oops\n", "features.jsonl:1: invalid JSON"),
        ('{"segment": "gold"}\n', "features.jsonl:1: each line needs"),
        ('{"entity_id": "a"}\n{"entity_id": "a"}\n', "features.jsonl:2: entity_id 'a' appears"),
    ],
)
def test_load_features_file_errors(tmp_path, text, message):
    path = tmp_path / "features.jsonl"
    path.write_text(text)
    with pytest.raises(FeaturesFileError, match=message):
        load_features_file(path)


def test_missing_features_file(tmp_path):
    with pytest.raises(FeaturesFileError, match="cannot read features file"):
        load_features_file(tmp_path / "absent.jsonl")


def test_load_features_file_byte_order_mark(tmp_path):
    path = tmp_path / "features.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"entity_id": "card-1", "segment": "gold"}\n')
    assert load_features_file(path) == {"card-1": {"segment": "gold"}}


def test_load_features_file_not_utf8(tmp_path):
    path = tmp_path / "features.jsonl"
    path.write_bytes(b'{"entity_id": "card-\xff"}\n')
    with pytest.raises(FeaturesFileError, match=r"is not UTF-8 .*save it as UTF-8 JSON Lines"):
        load_features_file(path)
