"""Detect inputs that stay unknown until the update runs, as CrossGuard's SDK does.

``pulumi preview`` marks a value it cannot know yet (the email of a service
account that does not exist yet, say) with a fixed sentinel string. A rule
that reads one cannot decide, so the gate reports the rule as not evaluated
instead of judging the sentinel as if it were the real value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

# The sentinels of Pulumi's property model (sdk/go/common/resource/properties.go
# and pulumi_policy/proxy.py in pulumi-policy 1.21.0).
UNKNOWN_SENTINELS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)


class UnknownValueError(Exception):
    """A rule read an input whose value is unknown until the update runs."""

    def __init__(self, path: Sequence[str]) -> None:
        self.path = ".".join(path)
        super().__init__(f"{self.path} is unknown until the update runs")


def _check(value: Any, path: tuple[str, ...]) -> Any:
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        raise UnknownValueError(path)
    if isinstance(value, Mapping):
        return UnknownCheckingMapping(value, path)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return UnknownCheckingSequence(value, path)
    return value


class UnknownCheckingMapping(Mapping[str, Any]):
    """Read-only view of an object that raises UnknownValueError on an unknown value."""

    def __init__(self, target: Mapping[str, Any], path: tuple[str, ...] = ()) -> None:
        self._target = target
        self._path = path

    def __getitem__(self, key: str) -> Any:
        return _check(self._target[key], (*self._path, key))

    def __iter__(self) -> Iterator[str]:
        return iter(self._target)

    def __len__(self) -> int:
        return len(self._target)


class UnknownCheckingSequence(Sequence[Any]):
    """Read-only view of an array that raises UnknownValueError on an unknown element."""

    def __init__(self, target: Sequence[Any], path: tuple[str, ...]) -> None:
        self._target = target
        self._path = path

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return _check(self._target[index], (*self._path, str(index)))

    def __len__(self) -> int:
        return len(self._target)
