"""Pack configuration values (CMEK, deletion protection, limits) with strict production defaults.

CrossGuard configures each policy separately: a policy pack config file maps
a policy name to its ``enforcementLevel`` and its own properties. The rules
share one vocabulary of property names, listed in ``SETTINGS``, and each rule
declares the subset it reads. A property left out of the config file takes
the default here, which is the strictest (production) value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any


class SettingsError(ValueError):
    """A pack configuration property has the wrong name, type or range."""


@dataclass(frozen=True)
class Settings:
    """Values the rules read; field defaults are the production (strictest) choices."""

    cmek_required: bool = True
    deletion_protection_required: bool = True
    private_endpoint_required: bool = True
    required_labels: tuple[str, ...] = ("environment", "app")
    unversioned_bucket_purposes: tuple[str, ...] = ("staging", "temp")
    dead_letter_exempt_purposes: tuple[str, ...] = ("dead-letter-review",)
    max_workers: int = 20
    max_replicas: int = 4
    max_gpu_quota: int = 16
    max_rotation_days: int = 90


@dataclass(frozen=True)
class Setting:
    """One configuration property: its camelCase key, the Settings field and its JSON schema."""

    key: str
    attribute: str
    description: str
    kind: type
    minimum: int | None = None
    schema_extra: Mapping[str, Any] = field(default_factory=dict)

    def default(self) -> Any:
        """Return the production default, in JSON form (lists, not tuples)."""
        value = getattr(Settings(), self.attribute)
        return list(value) if isinstance(value, tuple) else value

    def json_schema(self) -> dict[str, Any]:
        """Return the JSON schema CrossGuard shows and validates for this property."""
        names = {bool: "boolean", int: "integer", tuple: "array"}
        schema: dict[str, Any] = {
            "type": names[self.kind],
            "description": self.description,
            "default": self.default(),
        }
        if self.kind is tuple:
            schema["items"] = {"type": "string"}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        schema.update(self.schema_extra)
        return schema


SETTINGS: Mapping[str, Setting] = {
    setting.key: setting
    for setting in (
        Setting(
            "cmekRequired",
            "cmek_required",
            "Require a customer-managed Cloud KMS key on every resource that stores data.",
            bool,
        ),
        Setting(
            "deletionProtectionRequired",
            "deletion_protection_required",
            "Require deletion protection (resource flag or Pulumi protect) on stateful resources.",
            bool,
        ),
        Setting(
            "privateEndpointRequired",
            "private_endpoint_required",
            "Require Vertex AI endpoints to be reachable only through a VPC or Private Service "
            "Connect.",
            bool,
        ),
        Setting(
            "requiredLabels",
            "required_labels",
            "Label keys that every labelled resource must carry with a non-empty value.",
            tuple,
        ),
        Setting(
            "unversionedBucketPurposes",
            "unversioned_bucket_purposes",
            "Values of a bucket's 'purpose' label that mark scratch buckets exempt from "
            "versioning.",
            tuple,
        ),
        Setting(
            "deadLetterExemptPurposes",
            "dead_letter_exempt_purposes",
            "Values of a subscription's 'purpose' label that mark the terminal subscription "
            "of a dead-letter topic, exempt from needing a dead-letter policy itself.",
            tuple,
        ),
        Setting(
            "maxWorkers",
            "max_workers",
            "Largest maxWorkers a Dataflow job may declare.",
            int,
            minimum=1,
        ),
        Setting(
            "maxReplicas",
            "max_replicas",
            "Largest replica count a Vertex AI deployment may declare.",
            int,
            minimum=1,
        ),
        Setting(
            "maxGpuQuota",
            "max_gpu_quota",
            "Largest preferred value a GPU quota preference may request.",
            int,
            minimum=0,
        ),
        Setting(
            "maxRotationDays",
            "max_rotation_days",
            "Longest Cloud KMS key rotation period, in days.",
            int,
            minimum=1,
        ),
    )
}


def _convert(setting: Setting, value: Any, where: str) -> Any:
    expected = {bool: "true or false", int: "an integer", tuple: "a list of strings"}
    problem = (
        f"{where}: {setting.key} is {value!r}; expected {expected[setting.kind]}"
        f" (default {setting.default()!r})"
    )
    if setting.kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(problem)
        return value
    if setting.kind is int:
        # CrossGuard passes config through a protobuf Struct, which turns every
        # JSON number into a float, so 20.0 must read as 20.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(problem)
        if setting.minimum is not None and value < setting.minimum:
            raise SettingsError(f"{problem} of at least {setting.minimum}")
        return value
    is_list = isinstance(value, Sequence) and not isinstance(value, str)
    if not is_list or not all(isinstance(item, str) for item in value):
        raise SettingsError(problem)
    return tuple(value)


def settings_from_config(
    config: Mapping[str, Any], allowed: Sequence[str], where: str = "policy config"
) -> Settings:
    """Build Settings from one policy's config properties, defaulting what is absent.

    ``allowed`` is the list of keys the policy declares. Keys outside it are
    rejected, so a misspelt or misplaced key fails loudly instead of leaving
    the strict default in force unnoticed.

    Raises:
        SettingsError: a key is unknown to the policy or a value has the wrong type.
    """
    values: dict[str, Any] = {}
    for key, value in config.items():
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise SettingsError(f"{where}: unknown property {key!r}; this policy reads: {known}")
        setting = SETTINGS[key]
        values[setting.attribute] = _convert(setting, value, where)
    return replace(Settings(), **values)


def config_schema(keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Return the JSON schema properties for ``keys``, as CrossGuard's config schema takes them."""
    return {key: SETTINGS[key].json_schema() for key in keys}
