"""Shared fixtures: each stack is run offline once per test session, because a run takes seconds."""

from __future__ import annotations

import pytest

from infra.offline import DeclaredResource, run_stack


@pytest.fixture(scope="session")
def dev_resources() -> list[DeclaredResource]:
    return run_stack("dev")


@pytest.fixture(scope="session")
def prod_resources() -> list[DeclaredResource]:
    return run_stack("prod")


@pytest.fixture(scope="session")
def stacks(
    dev_resources: list[DeclaredResource], prod_resources: list[DeclaredResource]
) -> dict[str, list[DeclaredResource]]:
    return {"dev": dev_resources, "prod": prod_resources}
