"""Pulumi entry point: ``pulumi up`` runs this file with ``infra/`` as the program directory."""

import sys
from pathlib import Path

# Pulumi puts infra/ itself on sys.path, but the program imports the `infra` and
# `pipeline` packages (schemas and template metadata), so the repository root
# must be importable as well.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from infra.program import main  # noqa: E402 (needs the sys.path entry above)

main()
