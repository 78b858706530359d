"""Flex Template metadata built from the pipeline's option declarations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.options import OPTION_SPECS

TEMPLATE_NAME = "realtime-anomaly-detection"
TEMPLATE_DESCRIPTION = (
    "Streaming anomaly detection: reads events from Pub/Sub, deduplicates them, enriches "
    "them from Bigtable, scores them per entity in event-time order, triages detections "
    "with a model, and writes to Pub/Sub and BigQuery."
)


def template_metadata() -> dict[str, Any]:
    """Return the Flex Template metadata (the JSON `gcloud dataflow flex-template build` takes)."""
    parameters: list[dict[str, Any]] = []
    for spec in OPTION_SPECS:
        parameter: dict[str, Any] = {
            "name": spec.name,
            "label": spec.label,
            "helpText": spec.help_text,
            "isOptional": spec.is_optional,
        }
        if spec.regexes:
            parameter["regexes"] = list(spec.regexes)
        parameters.append(parameter)
    return {
        "name": TEMPLATE_NAME,
        "description": TEMPLATE_DESCRIPTION,
        "streaming": True,
        "supportsAtLeastOnce": True,
        "supportsExactlyOnce": True,
        # Exactly-once keeps the dedup and detector state consistent across worker retries.
        "defaultStreamingMode": "EXACTLY_ONCE",
        "parameters": parameters,
    }


def main(argv: list[str] | None = None) -> int:
    """Write the metadata JSON to --output, or to stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, help="file to write; stdout when omitted")
    args = parser.parse_args(argv)
    text = json.dumps(template_metadata(), indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
