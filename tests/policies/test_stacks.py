"""The project's own stacks, run under mocks, violate no mandatory policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.config import CONFIG_DIR, load_pack_config
from policies.evaluate import evaluate
from policies.inputs import resources_from_stack
from policies.model import Enforcement

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


# Importing pulumi_gcp warns about its deprecated aliases.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_passes_gate(stack: str) -> None:
    if not (REPOSITORY_ROOT / f"Pulumi.{stack}.yaml").is_file():
        pytest.skip(f"Pulumi.{stack}.yaml does not exist yet")
    resources = resources_from_stack(stack)
    config = load_pack_config(CONFIG_DIR / f"{stack}.json")
    mandatory = [
        f"{v.policy}: {v.message}"
        for v in evaluate(resources, config)
        if v.enforcement is Enforcement.MANDATORY
    ]
    assert len(resources) > 0
    assert mandatory == []
