"""Read a CrossGuard policy pack config file into enforcement levels and Settings per rule.

The file is the one ``pulumi preview --policy-pack-config`` takes: a JSON
object whose keys are policy names (or ``all``) and whose values are either an
enforcement level or an object with ``enforcementLevel`` and the policy's
properties. The gate reads the same file, so both paths enforce one setting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.model import Enforcement, Rule
from policies.rules import RULES_BY_NAME
from policies.settings import Settings, SettingsError, settings_from_config

CONFIG_DIR = Path(__file__).resolve().parent / "config"
"""Per-environment config files: ``dev.json`` and ``prod.json``."""

_LEVELS = {
    "advisory": Enforcement.ADVISORY,
    "mandatory": Enforcement.MANDATORY,
    "disabled": Enforcement.DISABLED,
    # The SDK reports a violation that survives remediation as mandatory.
    "remediate": Enforcement.MANDATORY,
}


class ConfigError(ValueError):
    """The policy config file is missing, not JSON, or names an unknown policy or property."""


@dataclass(frozen=True)
class PackConfig:
    """Enforcement levels and Settings per rule, with the rules' own defaults for the rest."""

    source: str = "built-in defaults (production)"
    all_level: Enforcement | None = None
    levels: Mapping[str, Enforcement] = field(default_factory=dict)
    settings: Mapping[str, Settings] = field(default_factory=dict)

    def enforcement(self, rule: Rule) -> Enforcement:
        """Return the level in force: the policy's own entry, then ``all``, then the rule's."""
        if rule.name in self.levels:
            return self.levels[rule.name]
        if self.all_level is not None:
            return self.all_level
        return rule.enforcement

    def settings_for(self, rule: Rule) -> Settings:
        """Return the Settings the rule runs with."""
        return self.settings.get(rule.name, Settings())


def _level(value: Any, where: str) -> Enforcement:
    if not isinstance(value, str) or value not in _LEVELS:
        raise ConfigError(
            f"{where}: enforcement level {value!r} is invalid; expected one of {', '.join(_LEVELS)}"
        )
    return _LEVELS[value]


def parse_pack_config(
    document: Any, source: str, rules: Mapping[str, Rule] = RULES_BY_NAME
) -> PackConfig:
    """Validate a parsed config document and build the PackConfig it describes.

    Raises:
        ConfigError: the document is not an object, or names an unknown policy,
            level or property, or a property has the wrong type.
    """
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"{source}: expected a JSON object of policy names to settings, "
            f"got {type(document).__name__}"
        )

    all_level: Enforcement | None = None
    levels: dict[str, Enforcement] = {}
    settings: dict[str, Settings] = {}
    for name, value in document.items():
        where = f"{source}: {name}"
        if name == "all":
            entry = value if isinstance(value, Mapping) else {"enforcementLevel": value}
            all_level = _level(entry.get("enforcementLevel"), where)
            continue
        if name not in rules:
            raise ConfigError(
                f"{where}: no policy of that name in the pack; see "
                "`python -m policies.gate --list` for the names"
            )
        if not isinstance(value, Mapping):
            levels[name] = _level(value, where)
            continue

        properties = dict(value)
        if "enforcementLevel" in properties:
            levels[name] = _level(properties.pop("enforcementLevel"), where)
        try:
            settings[name] = settings_from_config(properties, rules[name].settings, where)
        except SettingsError as error:
            raise ConfigError(str(error)) from error

    return PackConfig(source=source, all_level=all_level, levels=levels, settings=settings)


def load_pack_config(path: Path) -> PackConfig:
    """Read and validate the policy config file at ``path``.

    Raises:
        ConfigError: the file is missing, unreadable, not JSON or not a valid config.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"policy config {path} not found; pass --policy-config with an existing file "
            f"or use one of {CONFIG_DIR}/dev.json, {CONFIG_DIR}/prod.json"
        ) from None
    except OSError as error:
        raise ConfigError(f"policy config {path} cannot be read: {error}") from error
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"policy config {path} is not valid JSON (line {error.lineno}, column "
            f"{error.colno}: {error.msg})"
        ) from error
    return parse_pack_config(document, str(path))
