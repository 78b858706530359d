"""Tests for the columnar form of one entity's events used by scoring."""

# Test helpers are left unannotated.
# mypy: disable-error-code="no-untyped-call"

from datetime import UTC, datetime, timedelta

from pipeline.coders import event_to_tuple
from pipeline.columns import append_for_shuffle, event_at, from_buffered, merge_sorted, new_columns
from pipeline.records import Event, to_micros

START = datetime(2024, 5, 1, tzinfo=UTC)


def event(event_id, seconds, **fields):
    return Event(event_id, "card-1", START + timedelta(seconds=seconds), {"v": seconds}, **fields)


def test_merge_sorted_orders_chunks_by_time_then_id():
    first, second = new_columns(), new_columns()
    for item in (event("c", 2), event("a", 0)):
        append_for_shuffle(first, item)
    for item in (event("b", 2), event("d", 1)):
        append_for_shuffle(second, item)
    merged = merge_sorted([first, second])
    assert merged[0] == ["a", "d", "b", "c"]
    assert merged[1] == sorted(merged[1])
    assert [features["v"] for features in merged[2]] == [0, 1, 2, 2]
    assert [event_at(merged, "card-1", index).event_id for index in range(4)] == merged[0]


def test_event_at_restores_pickled_details():
    original = event(
        "a", 5, attributes={"city": "Munich", "online": True}, message="hi", context={"x": [1]}
    )
    columns = new_columns()
    append_for_shuffle(columns, original)
    assert isinstance(columns[3][0], bytes)
    assert event_at(columns, "card-1", 0) == original


def test_from_buffered_keeps_details_unpickled():
    original = event("a", 5, attributes={"city": "Munich"}, message="hi")
    columns = from_buffered([(to_micros(original.event_time), event_to_tuple(original))])
    assert columns[3] == [({"city": "Munich"}, "hi", {})]
    assert event_at(columns, "card-1", 0) == original
