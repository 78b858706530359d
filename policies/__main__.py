"""Serve the policy pack to the Pulumi CLI (`pulumi preview --policy-pack policies`)."""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI runs this file through `python -m pulumi.policy ENGINE policies`,
# which puts policies/ itself, not the repository root, on sys.path. Adding
# the root makes `import policies...` work there and when run from the root.
_REPOSITORY_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPOSITORY_ROOT not in sys.path:
    sys.path.insert(0, _REPOSITORY_ROOT)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.pack import PACK_NAME, build_policies  # noqa: E402

# Constructing the pack starts the gRPC server and blocks until the CLI stops it.
PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description="Security rules for the real-time anomaly detection stack on Google Cloud.",
)
