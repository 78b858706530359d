"""Deterministic synthetic card-transaction stream with labelled, injected fraud patterns.

Each card has a home city, a typical spend (log-normal amounts) and a Poisson purchase
rate. Three fraud patterns are injected after the detector's warm-up:

- ``amount_spike``: one purchase 12 to 30 times the card's median amount;
- ``burst``: six small purchases within ten minutes (card testing);
- ``location_jump``: two purchases in a city thousands of km from home.

An incident also covers the purchases right after it whose features it distorts: those
within the hour after a burst (high ``tx_last_hour``) and the first purchase back home
after a location jump (large ``km_from_last``).

Every event carries the features ``amount``, ``km_from_last`` (great-circle distance
from the card's previous purchase) and ``tx_last_hour`` (the card's purchases in the
previous 60 minutes). The stream also contains a few invalid payloads and redelivered
duplicates, and is lightly shuffled, so a run exercises the dead letter, the dedup and
the event-time ordering.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pipeline.records import format_timestamp, parse_timestamp

START: Final = datetime(2024, 5, 1, tzinfo=UTC)
KINDS: Final = ("amount_spike", "burst", "location_jump")

# (name, country, latitude, longitude)
CITIES: Final = (
    ("Lyon", "FR", 45.76, 4.84),
    ("Munich", "DE", 48.14, 11.58),
    ("Milan", "IT", 45.46, 9.19),
    ("Porto", "PT", 41.15, -8.61),
    ("Krakow", "PL", 50.06, 19.94),
    ("Utrecht", "NL", 52.09, 5.12),
)
FAR_CITIES: Final = (
    ("Lagos", "NG", 6.52, 3.38),
    ("Manila", "PH", 14.60, 120.98),
    ("Lima", "PE", -12.05, -77.04),
)
# Spread of log(amount) per card; 0.35 puts 95% of purchases within half and twice the median.
AMOUNT_SIGMA: Final = 0.35
CATEGORIES: Final = ("grocery", "fuel", "restaurant", "pharmacy", "online", "transport")


@dataclass(frozen=True)
class Incident:
    """One injected fraud pattern and the event_ids that belong to it."""

    incident_id: str
    kind: str
    entity_id: str
    event_ids: tuple[str, ...]


@dataclass(frozen=True)
class SyntheticStream:
    """The generated payload lines (in delivery order) and the injected incidents."""

    lines: tuple[str, ...]
    incidents: tuple[Incident, ...]
    valid_events: int
    duplicates: int
    invalid: int
    cards: int
    features_by_event: dict[str, dict[str, float]] = field(default_factory=dict)
    event_times: dict[str, datetime] = field(default_factory=dict)

    def labelled_event_ids(self) -> set[str]:
        """Return the event_ids of every injected incident."""
        return {event_id for incident in self.incidents for event_id in incident.event_ids}

    def labels_json(self) -> str:
        """Return the incidents as JSON, for the demo's output directory."""
        return json.dumps(
            [
                {
                    "incident_id": incident.incident_id,
                    "kind": incident.kind,
                    "entity_id": incident.entity_id,
                    "event_ids": list(incident.event_ids),
                }
                for incident in self.incidents
            ],
            indent=2,
        )


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine, Earth radius 6371 km)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


@dataclass
class _Purchase:
    time: datetime
    amount: float
    place: tuple[float, float]
    city: str
    country: str
    category: str
    incident: str | None = None


def _near(
    rng: random.Random, lat: float, lon: float, radius_km: float = 8.0
) -> tuple[float, float]:
    # About 111 km per degree of latitude; good enough for points inside one city.
    return (
        lat + rng.uniform(-radius_km, radius_km) / 111.0,
        lon + rng.uniform(-radius_km, radius_km) / (111.0 * math.cos(math.radians(lat))),
    )


def _card_purchases(
    rng: random.Random, card: int, days: int, kind: str | None
) -> tuple[list[_Purchase], str | None]:
    city, country, lat, lon = CITIES[card % len(CITIES)]
    median = rng.uniform(15.0, 80.0)
    rate_per_hour = rng.uniform(0.4, 0.8)
    purchases: list[_Purchase] = []
    moment = START + timedelta(minutes=rng.uniform(0, 60))
    end = START + timedelta(days=days)
    while moment < end:
        purchases.append(
            _Purchase(
                time=moment,
                amount=round(median * math.exp(rng.gauss(0.0, AMOUNT_SIGMA)), 2),
                place=_near(rng, lat, lon),
                city=city,
                country=country,
                category=rng.choice(CATEGORIES),
            )
        )
        moment += timedelta(hours=rng.expovariate(rate_per_hour))

    if kind is None:
        return purchases, None
    incident = f"card-{card:03d}-{kind}"
    # Inject in the second half, well after the detector's 20-event warm-up.
    anchor = purchases[rng.randrange(len(purchases) // 2, len(purchases) - 3)]
    if kind == "amount_spike":
        anchor.amount = round(median * rng.uniform(12.0, 30.0), 2)
        anchor.category = "online"
        anchor.incident = incident
    elif kind == "burst":
        for index in range(6):
            purchases.append(
                _Purchase(
                    time=anchor.time + timedelta(minutes=1 + index * rng.uniform(1.0, 1.8)),
                    amount=round(rng.uniform(1.0, 5.0), 2),
                    place=anchor.place,
                    city=city,
                    country=country,
                    category="online",
                    incident=incident,
                )
            )
    else:
        far_city, far_country, far_lat, far_lon = rng.choice(FAR_CITIES)
        for index in range(2):
            purchases.append(
                _Purchase(
                    time=anchor.time + timedelta(minutes=20 + 15 * index),
                    amount=round(median * math.exp(rng.gauss(0.0, AMOUNT_SIGMA)), 2),
                    place=_near(rng, far_lat, far_lon),
                    city=far_city,
                    country=far_country,
                    category=rng.choice(CATEGORIES),
                    incident=incident,
                )
            )
    purchases.sort(key=lambda purchase: purchase.time)
    _label_aftermath(purchases, incident, kind)
    return purchases, incident


def _label_aftermath(purchases: list[_Purchase], incident: str, kind: str) -> None:
    """Label the purchases whose features the incident distorts.

    A genuine purchase that falls between the incident's first and last purchase has
    its features distorted too (a high tx_last_hour inside a burst, thousands of km
    from a purchase abroad). After a burst, tx_last_hour stays high for an hour. After
    a location jump, the next purchase at home is thousands of km from the last one.
    Those events are anomalous because of the incident, so they belong to it.
    """
    marked = [index for index, purchase in enumerate(purchases) if purchase.incident == incident]
    first, last = marked[0], marked[-1]
    for purchase in purchases[first:last]:
        purchase.incident = incident
    if kind == "burst":
        until = purchases[last].time + timedelta(hours=1)
        for purchase in purchases[last + 1 :]:
            if purchase.time > until:
                break
            purchase.incident = incident
    elif kind == "location_jump" and last + 1 < len(purchases):
        purchases[last + 1].incident = incident


def _events_for_card(card: int, purchases: list[_Purchase]) -> list[dict[str, Any]]:
    entity_id = f"card-{card:03d}"
    events: list[dict[str, Any]] = []
    for index, purchase in enumerate(purchases):
        previous = purchases[index - 1] if index else None
        km = _distance_km(previous.place, purchase.place) if previous else 0.0
        hour_ago = purchase.time - timedelta(hours=1)
        recent = sum(1 for other in purchases[:index] if other.time >= hour_ago)
        events.append(
            {
                "event_id": f"{entity_id}-tx-{index:04d}",
                "entity_id": entity_id,
                "event_time": format_timestamp(purchase.time.replace(microsecond=0)),
                "features": {
                    "amount": purchase.amount,
                    "km_from_last": round(km, 2),
                    "tx_last_hour": float(recent),
                },
                "attributes": {
                    "merchant_category": purchase.category,
                    "city": purchase.city,
                    "country": purchase.country,
                },
                "message": f"{purchase.category} purchase of {purchase.amount:.2f} EUR in "
                f"{purchase.city}",
                "_incident": purchase.incident,
            }
        )
    return events


_INVALID_PAYLOADS: Final = (
    '{"event_id": "bad-1", "entity_id": "card-000", "event_time": "2024-05-02T10:00:00Z"',
    '{"event_id": "bad-2", "entity_id": "card-001", "features": {"amount": 12.5}}',
    '{"event_id": "bad-3", "entity_id": "card-002", "event_time": "yesterday", '
    '"features": {"amount": 3}}',
    '{"event_id": "bad-4", "entity_id": "card-003", "event_time": "2024-05-02T10:00:00Z", '
    '"features": {"amount": "12.50"}}',
    '["not", "an", "object"]',
)


def generate(
    seed: int = 7, cards: int = 24, days: int = 6, duplicates: int = 12
) -> SyntheticStream:
    """Generate the stream. The same arguments always give the same lines."""
    rng = random.Random(seed)
    kinds: list[str | None] = [
        KINDS[card % len(KINDS)] if card % 2 == 0 else None for card in range(cards)
    ]
    events: list[dict[str, Any]] = []
    incidents: list[Incident] = []
    for card in range(cards):
        purchases, incident_id = _card_purchases(rng, card, days, kinds[card])
        card_events = _events_for_card(card, purchases)
        events.extend(card_events)
        if incident_id is not None:
            incidents.append(
                Incident(
                    incident_id=incident_id,
                    kind=str(kinds[card]),
                    entity_id=f"card-{card:03d}",
                    event_ids=tuple(
                        event["event_id"]
                        for event in card_events
                        if event["_incident"] == incident_id
                    ),
                )
            )

    events.sort(key=lambda event: (event["event_time"], event["event_id"]))
    # Deliver some neighbours out of order, as Pub/Sub may.
    for index in range(0, len(events) - 1, 7):
        events[index], events[index + 1] = events[index + 1], events[index]

    features = {event["event_id"]: dict(event["features"]) for event in events}
    times = {event["event_id"]: parse_timestamp(event["event_time"]) for event in events}
    lines = [json.dumps({k: v for k, v in event.items() if k != "_incident"}) for event in events]
    redelivered = [lines[rng.randrange(len(lines))] for _ in range(duplicates)]
    for line in redelivered:
        lines.insert(rng.randrange(len(lines)), line)
    for payload in _INVALID_PAYLOADS:
        lines.insert(rng.randrange(len(lines)), payload)
    return SyntheticStream(
        lines=tuple(lines),
        incidents=tuple(incidents),
        valid_events=len(events),
        duplicates=duplicates,
        invalid=len(_INVALID_PAYLOADS),
        cards=cards,
        features_by_event=features,
        event_times=times,
    )
