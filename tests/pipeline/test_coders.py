"""Tests for EventCoder: round trips, and its registration for PCollections of Events."""

import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from apache_beam.coders.typecoders import registry
from apache_beam.utils.timestamp import Timestamp

from pipeline.coders import EventCoder
from pipeline.records import Event, from_micros, to_micros

FULL = Event(
    event_id="e-1",
    entity_id="card-1",
    event_time=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
    features={"amount": 12.5, "count": 3.0},
    attributes={"country": "FR", "online": True, "n": 7, "rate": 0.5},
    message="purchase",
    context={"profile": {"segment": "gold", "limit": 500}},
)


@pytest.mark.parametrize(
    "event",
    [
        FULL,
        Event("e-2", "card-2", datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), {"v": -1.0}),
        Event(
            "e-3",
            "card-3",
            datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            {"v": 1.0},
        ),
    ],
    ids=["all fields", "before epoch", "non-UTC zone"],
)
def test_event_coder_round_trip(event):
    coder = EventCoder()
    decoded = coder.decode(coder.encode(event))
    assert decoded == event
    assert decoded.event_time.utcoffset() == event.event_time.utcoffset()


def test_event_coder_is_registered():
    assert registry.get_coder(Event) == EventCoder()
    assert pickle.loads(pickle.dumps(EventCoder())) == EventCoder()


@pytest.mark.parametrize("micros", [0, 1, -1, 1_714_564_800_123_456])
def test_micros_match_beam_timestamps(micros):
    moment = from_micros(micros)
    assert moment == Timestamp(micros=micros).to_utc_datetime(has_tz=True)
    assert to_micros(moment) == micros
