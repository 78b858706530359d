"""Pipeline options, declared once for argparse and for the Flex Template metadata."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.triage import check_max_per_second

SUBSCRIPTION_PATTERN = r"^projects/[^/]+/subscriptions/[^/]+$"
TOPIC_PATTERN = r"^projects/[^/]+/topics/[^/]+$"
TABLE_PATTERN = r"^[^:.]+:[^:.]+\.[^:.]+$"
ENDPOINT_PATTERN = r"^projects/[^/]+/locations/[^/]+/endpoints/[^/]+$"
NUMBER_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
INTEGER_PATTERN = r"^[0-9]+$"
TRIAGE_HANDLERS = ("vertex", "local", "none")


@dataclass(frozen=True)
class OptionSpec:
    """One pipeline option: its argparse definition and its Flex Template parameter."""

    name: str
    label: str
    help_text: str
    type: Callable[[str], Any] = str
    default: Any = None
    is_optional: bool = True
    regexes: tuple[str, ...] = ()

    def check(self, value: Any) -> None:
        """Raise ValueError naming the option when `value` does not match its regexes."""
        if value is None or not self.regexes:
            return
        text = str(value)
        if not any(re.match(pattern, text) for pattern in self.regexes):
            raise ValueError(
                f"--{self.name}={text!r} is invalid: {self.help_text} "
                f"(expected to match {' or '.join(self.regexes)})"
            )


OPTION_SPECS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "input_subscription",
        "Input Pub/Sub subscription",
        "Subscription the events are read from, as projects/PROJECT/subscriptions/NAME.",
        is_optional=False,
        regexes=(SUBSCRIPTION_PATTERN,),
    ),
    OptionSpec(
        "detections_topic",
        "Detections Pub/Sub topic",
        "Topic that each triaged detection is published to, as projects/PROJECT/topics/NAME.",
        is_optional=False,
        regexes=(TOPIC_PATTERN,),
    ),
    OptionSpec(
        "dead_letter_topic",
        "Dead-letter Pub/Sub topic",
        "Topic that each record the pipeline could not process is published to, "
        "as projects/PROJECT/topics/NAME.",
        is_optional=False,
        regexes=(TOPIC_PATTERN,),
    ),
    OptionSpec(
        "scored_events_table",
        "Scored events BigQuery table",
        "Table for every scored event, as PROJECT:DATASET.TABLE.",
        is_optional=False,
        regexes=(TABLE_PATTERN,),
    ),
    OptionSpec(
        "detections_table",
        "Detections BigQuery table",
        "Table for detections with their triage, as PROJECT:DATASET.TABLE.",
        is_optional=False,
        regexes=(TABLE_PATTERN,),
    ),
    OptionSpec(
        "dead_letter_table",
        "Dead-letter BigQuery table",
        "Table for records the pipeline could not process, as PROJECT:DATASET.TABLE.",
        is_optional=False,
        regexes=(TABLE_PATTERN,),
    ),
    OptionSpec(
        "bigtable_project",
        "Bigtable project",
        "Project of the Bigtable instance used for enrichment. Defaults to the job's project.",
        regexes=(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$",),
    ),
    OptionSpec(
        "bigtable_instance",
        "Bigtable instance",
        "Bigtable instance with one row per entity_id. Enrichment is off when it is empty.",
        regexes=(r"^[a-z][-a-z0-9]{4,31}[a-z0-9]?$",),
    ),
    OptionSpec(
        "bigtable_table",
        "Bigtable table",
        "Bigtable table whose row key is the entity_id. Enrichment is off when it is empty.",
        regexes=(r"^[-_.a-zA-Z0-9]{1,50}$",),
    ),
    OptionSpec(
        "triage_handler",
        "Triage handler",
        "Model that triages detections: vertex (Vertex AI endpoint), local (embedded Gemma "
        "on the workers) or none.",
        default="none",
        regexes=(r"^(vertex|local|none)$",),
    ),
    OptionSpec(
        "vertex_endpoint",
        "Vertex AI endpoint",
        "Endpoint for triage_handler=vertex, as projects/PROJECT/locations/REGION/endpoints/ID.",
        regexes=(ENDPOINT_PATTERN,),
    ),
    OptionSpec(
        "triage_max_per_second",
        "Triage rate limit",
        "Maximum triage calls per second for each SDK worker process (Dataflow runs one "
        "per vCPU, so the job's ceiling is this times the total vCPUs); detections over "
        "the budget are delivered with triage status skipped.",
        type=float,
        default=1.0,
        regexes=(NUMBER_PATTERN,),
    ),
    OptionSpec(
        "event_time_attribute",
        "Event-time attribute",
        "Pub/Sub attribute with the event time (RFC 3339), used for watermarks. When "
        "empty, the pipeline uses the publish time for watermarks and the payload's "
        "event_time for scoring.",
        default="",
        regexes=(r"^[A-Za-z0-9_.-]*$",),
    ),
    OptionSpec(
        "id_attribute",
        "Deduplication-id attribute",
        "Pub/Sub attribute with the event_id, which Dataflow uses to drop redelivered "
        "messages. Empty turns this off; the pipeline still deduplicates by event_id.",
        default="event_id",
        regexes=(r"^[A-Za-z0-9_.-]*$",),
    ),
    OptionSpec(
        "anomaly_threshold",
        "Anomaly threshold",
        "Score in [0, 1] at or above which an event is an anomaly.",
        type=float,
        default=0.8,
        regexes=(NUMBER_PATTERN,),
    ),
    OptionSpec(
        "warmup_events",
        "Warm-up events",
        "Events per entity that update the baseline before any score can be an anomaly.",
        type=int,
        default=20,
        regexes=(INTEGER_PATTERN,),
    ),
    OptionSpec(
        "half_life_events",
        "Baseline half-life",
        "Number of events after which a past value's weight in the baseline halves.",
        type=float,
        default=50.0,
        regexes=(NUMBER_PATTERN,),
    ),
    OptionSpec(
        "allowed_lateness_seconds",
        "Allowed lateness",
        "Seconds behind the watermark an event may arrive and still be scored in "
        "event-time order. Each event waits this long after the watermark passes it.",
        type=float,
        default=10.0,
        regexes=(NUMBER_PATTERN,),
    ),
    OptionSpec(
        "dedup_window_seconds",
        "Deduplication window",
        "Event-time seconds during which a repeated event_id counts as a duplicate.",
        type=float,
        default=600.0,
        regexes=(NUMBER_PATTERN,),
    ),
    OptionSpec(
        "entity_ttl_seconds",
        "Entity state time-to-live",
        "Event-time seconds without events after which an entity's detector state is cleared.",
        type=float,
        default=7 * 24 * 3600.0,
        regexes=(NUMBER_PATTERN,),
    ),
)

OPTION_NAMES: tuple[str, ...] = tuple(spec.name for spec in OPTION_SPECS)


class AnomalyPipelineOptions(PipelineOptions):  # type: ignore[misc]
    """Options of the anomaly-detection pipeline (see OPTION_SPECS for each one)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        for spec in OPTION_SPECS:
            parser.add_argument(
                f"--{spec.name}", type=spec.type, default=spec.default, help=spec.help_text
            )


def validate_options(options: PipelineOptions) -> AnomalyPipelineOptions:
    """Check the Dataflow options and return them as AnomalyPipelineOptions.

    Raises ValueError naming the first invalid or missing option and the fix.
    """
    values = options.view_as(AnomalyPipelineOptions)
    for spec in OPTION_SPECS:
        value = getattr(values, spec.name)
        if not spec.is_optional and value in (None, ""):
            raise ValueError(f"--{spec.name} is missing: {spec.help_text}")
        if value not in (None, ""):
            spec.check(value)
    if values.triage_handler == "vertex" and not values.vertex_endpoint:
        raise ValueError(
            "--vertex_endpoint is missing: triage_handler=vertex needs "
            "projects/PROJECT/locations/REGION/endpoints/ID"
        )
    if bool(values.bigtable_instance) != bool(values.bigtable_table):
        raise ValueError(
            "--bigtable_instance and --bigtable_table go together: set both to enrich "
            "from Bigtable, or neither to turn enrichment off"
        )
    if not 0.0 < values.anomaly_threshold <= 1.0:
        raise ValueError(
            f"--anomaly_threshold={values.anomaly_threshold} is out of range; use a value in (0, 1]"
        )
    check_max_per_second(
        values.triage_max_per_second,
        values.triage_handler,
        rate_name="--triage_max_per_second",
        handler_none="--triage_handler=none",
    )
    if values.half_life_events <= 0:
        raise ValueError(f"--half_life_events={values.half_life_events} must be positive")
    return values
