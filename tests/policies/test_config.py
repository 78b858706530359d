"""Pack settings and policy config files: parsing, errors, levels and the shipped files."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pulumi_gcp
import pytest

from policies.config import CONFIG_DIR, ConfigError, load_pack_config, parse_pack_config
from policies.model import Enforcement
from policies.rules import ALL_RULES, RULES_BY_NAME
from policies.rules.labels import LABELLED_TYPES
from policies.settings import SETTINGS, Settings, SettingsError, settings_from_config

TOPIC_CMEK = RULES_BY_NAME["pubsub-topic-cmek"]
MAX_WORKERS = RULES_BY_NAME["dataflow-max-workers"]


def test_settings_default_strict() -> None:
    settings = settings_from_config({}, ["cmekRequired"])
    assert settings == Settings()
    assert settings.cmek_required is True
    assert settings.deletion_protection_required is True
    assert settings.private_endpoint_required is True
    assert settings.max_rotation_days == 90


def test_settings_accept_integral_float() -> None:
    assert settings_from_config({"maxWorkers": 7.0}, ["maxWorkers"]).max_workers == 7


def test_settings_override() -> None:
    settings = settings_from_config(
        {"maxWorkers": 3, "requiredLabels": ["team"]}, ["maxWorkers", "requiredLabels"]
    )
    assert settings.max_workers == 3
    assert settings.required_labels == ("team",)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"cmekRequired": "yes"}, "cmekRequired is 'yes'; expected true or false"),
        ({"maxWorkers": 0}, "maxWorkers is 0; expected an integer (default 20) of at least 1"),
        ({"maxWorkers": True}, "maxWorkers is True; expected an integer"),
        ({"maxWorkers": 2.5}, "maxWorkers is 2.5; expected an integer"),
        ({"requiredLabels": "app"}, "requiredLabels is 'app'; expected a list of strings"),
        ({"cmekRequierd": True}, "unknown property 'cmekRequierd'"),
        ({"maxGpuQuota": 2}, "unknown property 'maxGpuQuota'; this policy reads: cmekRequired"),
    ],
)
def test_settings_reject(config: dict[str, Any], fragment: str) -> None:
    allowed = ["cmekRequired", "maxWorkers", "requiredLabels"]
    if "maxGpuQuota" in config:
        allowed = ["cmekRequired"]
    with pytest.raises(SettingsError) as error:
        settings_from_config(config, allowed)
    assert fragment in str(error.value)


def test_schema_has_defaults() -> None:
    for setting in SETTINGS.values():
        schema = setting.json_schema()
        assert schema["default"] == setting.default()
        assert schema["description"]
        assert schema["type"] in ("boolean", "integer", "array")


def test_config_levels() -> None:
    config = parse_pack_config(
        {
            "all": "advisory",
            "pubsub-topic-cmek": {"enforcementLevel": "disabled"},
            "dataflow-max-workers": "remediate",
        },
        "inline",
    )
    assert config.enforcement(TOPIC_CMEK) is Enforcement.DISABLED
    assert config.enforcement(MAX_WORKERS) is Enforcement.MANDATORY
    assert config.enforcement(RULES_BY_NAME["labels-required"]) is Enforcement.ADVISORY


def test_config_without_all_keeps_rule_level() -> None:
    config = parse_pack_config({}, "inline")
    for rule in ALL_RULES:
        assert config.enforcement(rule) is rule.enforcement


def test_config_properties() -> None:
    config = parse_pack_config({"dataflow-max-workers": {"maxWorkers": 4}}, "inline")
    assert config.settings_for(MAX_WORKERS).max_workers == 4
    assert config.settings_for(TOPIC_CMEK) == Settings()


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ([], "expected a JSON object of policy names to settings, got list"),
        ({"no-such-policy": "advisory"}, "no-such-policy: no policy of that name in the pack"),
        ({"all": "strict"}, "enforcement level 'strict' is invalid"),
        ({"pubsub-topic-cmek": {"enforcementLevel": 3}}, "enforcement level 3 is invalid"),
        ({"pubsub-topic-cmek": {"maxWorkers": 3}}, "unknown property 'maxWorkers'"),
    ],
)
def test_config_reject(document: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_pack_config(document, "inline")
    assert fragment in str(error.value)


def test_config_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_pack_config(tmp_path / "absent.json")
    assert "absent.json not found" in str(error.value)


def test_config_file_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{'all': 'mandatory'}", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_pack_config(path)
    assert "is not valid JSON (line 1, column 2" in str(error.value)


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_shipped_config_loads(environment: str) -> None:
    config = load_pack_config(CONFIG_DIR / f"{environment}.json")
    configured = {rule.name for rule in ALL_RULES if rule.settings}
    assert configured <= set(config.settings)


# Settings that prod.json deliberately relaxes from the strictest default,
# each with the reason stated in the config docs.
PROD_RELAXED = {
    # The pipeline's Vertex client calls the regional API, not a PSC address.
    ("vertex-endpoint-private", "privateEndpointRequired"): False,
}


def test_prod_config_is_default() -> None:
    document = json.loads((CONFIG_DIR / "prod.json").read_text(encoding="utf-8"))
    for name, entry in document.items():
        if name == "all":
            assert entry == "mandatory"
            continue
        for key, value in entry.items():
            if key == "enforcementLevel":
                continue
            expected = PROD_RELAXED.get((name, key), SETTINGS[key].default())
            assert value == expected, f"{name}.{key}"


def test_dev_config_relaxes() -> None:
    config = load_pack_config(CONFIG_DIR / "dev.json")
    assert config.settings_for(TOPIC_CMEK).cmek_required is False
    kms = RULES_BY_NAME["kms-key-protected"]
    assert config.settings_for(kms).deletion_protection_required is False
    assert config.settings_for(MAX_WORKERS).max_workers < Settings().max_workers


def _args_class(resource_type: str) -> type:
    """Find the pulumi_gcp Args class of a type token such as gcp:storage/bucket:Bucket."""
    _, module_path, class_name = resource_type.split(":")
    module_name = module_path.split("/", maxsplit=1)[0]
    module = getattr(pulumi_gcp, module_name)
    args = getattr(module, f"{class_name}Args")
    assert isinstance(args, type)
    return args


# Importing pulumi_gcp service modules warns about their deprecated aliases.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("resource_type", "prop"), sorted(LABELLED_TYPES.items()))
def test_labelled_type_takes_labels(resource_type: str, prop: str) -> None:
    parameters = inspect.signature(_args_class(resource_type)).parameters
    snake_case = "".join(f"_{c.lower()}" if c.isupper() else c for c in prop)
    assert snake_case in parameters


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "resource_type",
    ["gcp:compute/network:Network", "gcp:compute/firewall:Firewall", "gcp:kms/keyRing:KeyRing"],
)
def test_unlabelled_type_has_no_labels(resource_type: str) -> None:
    parameters = inspect.signature(_args_class(resource_type)).parameters
    assert "labels" not in parameters
