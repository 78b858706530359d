"""Declare one component under Pulumi mocks and return what the engine received.

Builds on the offline runner's mocks (``infra.offline``), so component tests and
whole-stack runs see the same computed outputs (IDs, endpoint numbers, job IDs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pulumi
from pulumi.runtime.settings import ROOT

from infra.offline import DeclaredResource, _Mocks, _RecordingMonitor

PROJECT = "test-project"
"""Project ID the mocks use in computed IDs."""

C = TypeVar("C")


@dataclass
class Declared(Generic[C]):
    """A component, the resources it registered and the resolved outputs a test asked for."""

    component: C
    resources: list[DeclaredResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[DeclaredResource]:
        """Return the declared resources with ``type_token``, in registration order."""
        return [resource for resource in self.resources if resource.type == type_token]

    def one(self, type_token: str) -> DeclaredResource:
        """Return the only declared resource with ``type_token``; fail when there are 0 or 2+."""
        matches = self.of_type(type_token)
        assert len(matches) == 1, f"expected one {type_token}, found {len(matches)}"
        return matches[0]


def declare(
    build: Callable[[], C],
    outputs: Callable[[C], Mapping[str, pulumi.Input[Any]]] | None = None,
    *,
    logger: logging.Logger | None = None,
) -> Declared[C]:
    """Run ``build`` under mocks, wait for every registration and resolve ``outputs(component)``.

    ``logger`` receives what the program logs through ``pulumi.log``.
    """
    mocks = _Mocks(PROJECT)
    monitor = _RecordingMonitor(mocks)
    ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project="test", stack="test", preview=False, monitor=monitor, logger=logger
    )

    holder: dict[str, Any] = {}

    def program() -> pulumi.Output[None]:
        component = build()
        holder["component"] = component
        requested = dict(outputs(component)) if outputs is not None else {}
        return pulumi.Output.all(**requested).apply(lambda values: holder.update(outputs=values))

    pulumi.runtime.mocks.test(program)()  # type: ignore[no-untyped-call]  # untyped in pulumi
    return Declared(
        component=holder["component"],
        resources=list(monitor.declared),
        outputs=dict(holder.get("outputs") or {}),
    )
