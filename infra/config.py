"""Stack configuration: every key, its default, and the validation run before any resource exists.

The program reads all configuration here, once. ``parse_config`` takes a plain
mapping of full keys (``gcp:project``, ``realtime-anomaly:maxWorkers``) to
values, so tests and the offline runner feed dicts while ``load_config`` feeds
what ``pulumi`` passes. Every problem is collected and raised together in one
``ConfigError``, and each message names the key, the value given and what is
expected.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import pulumi

from infra.components.conventions import label_errors, stack_labels
from infra.components.model_serving import G2_GPUS_PER_MACHINE

PROJECT_NAME = "realtime-anomaly"
"""Pulumi project name (``name:`` in Pulumi.yaml), and so the namespace of project config keys."""

ENVIRONMENTS = ("dev", "prod")
STREAMING_MODES = ("exactly_once", "at_least_once")
TRIAGE_MODES = ("vertex", "worker", "none")
BIGTABLE_STORAGE_TYPES = ("SSD", "HDD")

# Both GPU paths (Vertex AI replicas and GPU Dataflow workers) run on G2 machines,
# whose only accelerator is the NVIDIA L4.
VERTEX_ACCELERATOR_TYPES = ("NVIDIA_L4",)
ACCELERATOR_COUNTS = (1, 2, 4, 8)

# NOTE: region and zone list copied from the Compute Engine regions page in 2025;
# regions opened later are rejected until they are added here
# (`gcloud compute zones list` shows the current set).
REGION_ZONES: Mapping[str, tuple[str, ...]] = {
    "africa-south1": ("a", "b", "c"),
    "asia-east1": ("a", "b", "c"),
    "asia-east2": ("a", "b", "c"),
    "asia-northeast1": ("a", "b", "c"),
    "asia-northeast2": ("a", "b", "c"),
    "asia-northeast3": ("a", "b", "c"),
    "asia-south1": ("a", "b", "c"),
    "asia-south2": ("a", "b", "c"),
    "asia-southeast1": ("a", "b", "c"),
    "asia-southeast2": ("a", "b", "c"),
    "australia-southeast1": ("a", "b", "c"),
    "australia-southeast2": ("a", "b", "c"),
    "europe-central2": ("a", "b", "c"),
    "europe-north1": ("a", "b", "c"),
    "europe-southwest1": ("a", "b", "c"),
    "europe-west1": ("b", "c", "d"),
    "europe-west2": ("a", "b", "c"),
    "europe-west3": ("a", "b", "c"),
    "europe-west4": ("a", "b", "c"),
    "europe-west6": ("a", "b", "c"),
    "europe-west8": ("a", "b", "c"),
    "europe-west9": ("a", "b", "c"),
    "europe-west10": ("a", "b", "c"),
    "europe-west12": ("a", "b", "c"),
    "me-central1": ("a", "b", "c"),
    "me-central2": ("a", "b", "c"),
    "me-west1": ("a", "b", "c"),
    "northamerica-northeast1": ("a", "b", "c"),
    "northamerica-northeast2": ("a", "b", "c"),
    "southamerica-east1": ("a", "b", "c"),
    "southamerica-west1": ("a", "b", "c"),
    "us-central1": ("a", "b", "c", "f"),
    "us-east1": ("b", "c", "d"),
    "us-east4": ("a", "b", "c"),
    "us-east5": ("a", "b", "c"),
    "us-south1": ("a", "b", "c"),
    "us-west1": ("a", "b", "c"),
    "us-west2": ("a", "b", "c"),
    "us-west3": ("a", "b", "c"),
    "us-west4": ("a", "b", "c"),
}

RESERVED_LABELS = ("environment", "app")
"""Labels the stack sets itself; config extras cannot override them."""

ConfigType = Literal["string", "boolean", "integer", "array"]
Environment = Literal["dev", "prod"]
StreamingMode = Literal["exactly_once", "at_least_once"]
TriageMode = Literal["vertex", "worker", "none"]
StorageType = Literal["SSD", "HDD"]


@dataclass(frozen=True)
class KeySpec:
    """One project-level config key as Pulumi.yaml declares it (``config:`` schema)."""

    key: str
    type: ConfigType
    default: str | bool | int | list[str]
    description: str


# Pulumi's config schema has no number type, so fractional values are strings.
KEYS: tuple[KeySpec, ...] = (
    KeySpec("environment", "string", "dev", "Environment: dev or prod. prod requires cmek=true."),
    KeySpec(
        "prefix",
        "string",
        "anomaly",
        "Name prefix for every resource (2-12 lowercase letters, digits or '-'); "
        "names are <prefix>-<environment>-<purpose>.",
    ),
    KeySpec(
        "zone",
        "string",
        "",
        "Zone of the Bigtable cluster; empty means the region's first zone.",
    ),
    KeySpec(
        "subnetCidr",
        "string",
        "10.20.0.0/22",
        "Private (RFC 1918) CIDR range of the Dataflow worker subnet, /8 to /29.",
    ),
    KeySpec(
        "cmek",
        "boolean",
        False,
        "Encrypt data with Cloud KMS keys that this stack creates; must be true in prod.",
    ),
    KeySpec("workerMachineType", "string", "n2-standard-2", "Machine type of Dataflow workers."),
    KeySpec("initialWorkers", "integer", 1, "Dataflow workers at job start (1-1000)."),
    KeySpec(
        "maxWorkers", "integer", 3, "Upper bound for Dataflow autoscaling; at least initialWorkers."
    ),
    KeySpec(
        "streamingMode",
        "string",
        "at_least_once",
        "Dataflow streaming mode: exactly_once or at_least_once.",
    ),
    KeySpec(
        "containerImage",
        "string",
        "",
        "Flex Template launcher image "
        "(HOST/PATH:TAG or HOST/PATH@sha256:DIGEST); empty means "
        "pipeline:latest in this stack's Artifact Registry repository.",
    ),
    KeySpec(
        "triageMode",
        "string",
        "none",
        "How flagged events are triaged by Gemma: vertex "
        "(Vertex AI endpoint), worker (model on GPU Dataflow workers) or none.",
    ),
    KeySpec(
        "triageMaxPerSecond",
        "string",
        "5",
        "Maximum triage requests per second for each SDK worker process (Dataflow runs "
        "one per vCPU), a decimal number greater than 0.",
    ),
    KeySpec(
        "workerGpuCount",
        "integer",
        1,
        "NVIDIA L4 GPUs per Dataflow worker when triageMode=worker; must match the G2 "
        "workerMachineType (1 for g2-standard-4 to g2-standard-32).",
    ),
    KeySpec(
        "gemmaModelId",
        "string",
        "publishers/google/models/gemma3@gemma-3-1b-it",
        "Model Garden publisher model deployed when triageMode=vertex.",
    ),
    KeySpec(
        "gemmaMachineType",
        "string",
        "g2-standard-12",
        "Machine type of the Vertex AI endpoint replicas.",
    ),
    KeySpec(
        "gemmaAcceleratorType",
        "string",
        "NVIDIA_L4",
        "Accelerator of each endpoint replica, as Vertex AI names it; G2 machines have NVIDIA_L4.",
    ),
    KeySpec(
        "gemmaAcceleratorCount", "integer", 1, "Accelerators per endpoint replica (1, 2, 4 or 8)."
    ),
    KeySpec("gemmaMinReplicas", "integer", 1, "Minimum endpoint replicas (at least 1)."),
    KeySpec(
        "gemmaMaxReplicas", "integer", 1, "Maximum endpoint replicas (at least gemmaMinReplicas)."
    ),
    KeySpec(
        "acceptGemmaLicense",
        "boolean",
        False,
        "Accept the Gemma terms of use for the "
        "Model Garden deployment; required true when triageMode=vertex.",
    ),
    KeySpec(
        "privateEndpoint",
        "boolean",
        False,
        "Serve the Vertex AI endpoint through "
        "Private Service Connect instead of a public endpoint.",
    ),
    KeySpec(
        "alertEmails",
        "array",
        [],
        "Email addresses that receive alert notifications; at least one in prod.",
    ),
    KeySpec(
        "alertSystemLagSeconds",
        "integer",
        300,
        "Alert when the Dataflow system lag exceeds this many seconds.",
    ),
    KeySpec(
        "alertDataFreshnessSeconds",
        "integer",
        600,
        "Alert when the job's output watermark lags wall time by more than this many seconds "
        "for 5 minutes.",
    ),
    KeySpec(
        "alertDeadLetterBacklog",
        "integer",
        0,
        "Alert when the dead-letter subscription holds more than this many undelivered "
        "messages; 0 alerts on the first one.",
    ),
    KeySpec(
        "alertAnomalyRate",
        "string",
        "0.05",
        "Alert when the fraction of events flagged as anomalies over 10 minutes exceeds this "
        "value (0 to 1).",
    ),
    KeySpec(
        "alertTriageFailures",
        "integer",
        10,
        "Alert when more triage calls than this fail within 10 minutes.",
    ),
    KeySpec(
        "alertEndpointErrorRate",
        "string",
        "0.05",
        "Alert when the fraction of failed Vertex AI predictions over 5 minutes exceeds this "
        "value (0 to 1).",
    ),
    KeySpec(
        "alertEndpointLatencyMs",
        "integer",
        5000,
        "Alert when the Vertex AI prediction "
        "latency (99th percentile) exceeds this many milliseconds.",
    ),
    KeySpec(
        "quotaContactEmail",
        "string",
        "",
        "Contact email on GPU quota requests; required when triageMode is vertex or worker.",
    ),
    KeySpec(
        "iapSsh",
        "boolean",
        False,
        "Allow SSH to workers from Identity-Aware Proxy (35.235.240.0/20, port 22).",
    ),
    KeySpec(
        "cloudNat",
        "boolean",
        False,
        "Create a Cloud Router and Cloud NAT so workers reach the internet without external IPs.",
    ),
    KeySpec("bigtableNodes", "integer", 1, "Nodes in the Bigtable cluster (1-1000)."),
    KeySpec("bigtableStorageType", "string", "SSD", "Bigtable storage type: SSD or HDD."),
    KeySpec(
        "labels",
        "array",
        [],
        "Extra labels as key=value strings, added to every "
        "labelled resource; environment and app are reserved.",
    ),
)
KEYS_BY_NAME: Mapping[str, KeySpec] = {spec.key: spec for spec in KEYS}

_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,10}[a-z0-9]$")
_MACHINE_TYPE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9]+(-[a-z0-9]+)*$")
_IMAGE = re.compile(
    r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]{1,128}|@sha256:[0-9a-f]{64})$"
)
_PUBLISHER_MODEL = re.compile(r"^publishers/[a-z0-9-]+/models/[a-z0-9._-]+@[a-z0-9._-]+$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
MAX_WORKERS = 1000
MAX_TRIAGE_PER_SECOND = 1000.0
_PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


class ConfigError(pulumi.RunError):
    """Invalid stack configuration, listing every problem found.

    Subclasses ``pulumi.RunError`` so that ``pulumi up`` prints the list
    without a Python traceback.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"invalid stack configuration ({len(self.problems)} problem(s)); "
            f"fix these keys with `pulumi config set` or in Pulumi.<stack>.yaml:\n{lines}"
        )


@dataclass(frozen=True)
class NetworkConfig:
    """Worker network settings."""

    subnet_cidr: str
    iap_ssh: bool
    cloud_nat: bool


@dataclass(frozen=True)
class DataflowConfig:
    """Streaming job sizing and launch settings."""

    machine_type: str
    initial_workers: int
    max_workers: int
    streaming_mode: StreamingMode
    container_image: str | None
    """Launcher image; ``None`` means ``pipeline:latest`` in the stack's repository."""
    gpus_per_worker: int
    """L4 GPUs per worker, used when triage_mode is ``worker``."""


@dataclass(frozen=True)
class GemmaConfig:
    """Vertex AI Model Garden deployment of Gemma, used when triage_mode is ``vertex``."""

    model_id: str
    machine_type: str
    accelerator_type: str
    accelerator_count: int
    min_replicas: int
    max_replicas: int
    accept_license: bool
    private_endpoint: bool


@dataclass(frozen=True)
class AlertConfig:
    """Notification targets and alert thresholds."""

    emails: tuple[str, ...]
    system_lag_seconds: int
    data_freshness_seconds: int
    dead_letter_backlog: int
    anomaly_rate: float
    triage_failures: int
    endpoint_error_rate: float
    endpoint_latency_ms: int


@dataclass(frozen=True)
class BigtableConfig:
    """Feature store sizing."""

    nodes: int
    storage_type: StorageType


@dataclass(frozen=True)
class StackConfig:
    """Validated configuration of one stack."""

    project: str
    region: str
    zone: str
    environment: Environment
    prefix: str
    cmek: bool
    labels: Mapping[str, str]
    """All labels for the stack's resources: ``environment``, ``app`` and the extras."""
    network: NetworkConfig
    dataflow: DataflowConfig
    triage_mode: TriageMode
    triage_max_per_second: float
    gemma: GemmaConfig
    alerts: AlertConfig
    quota_contact_email: str | None
    bigtable: BigtableConfig
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_prod(self) -> bool:
        """Whether data-bearing resources are protected from deletion."""
        return self.environment == "prod"

    @property
    def name_prefix(self) -> str:
        """Prefix of every resource name: ``<prefix>-<environment>``."""
        return f"{self.prefix}-{self.environment}"


def full_key(key: str) -> str:
    """Return the namespaced key (``realtime-anomaly:<key>``) used in messages and stack files."""
    return f"{PROJECT_NAME}:{key}"


class _Reader:
    """Coerce raw values to types and collect problems instead of raising at the first."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def problem(self, key: str, value: Any, expected: str) -> None:
        if value is None:
            self.problems.append(f"{key}: missing; expected {expected}")
        else:
            # Booleans as YAML writes them, so the message matches the stack file.
            shown = json.dumps(value) if isinstance(value, bool) else repr(value)
            self.problems.append(f"{key}: {shown} is invalid; expected {expected}")

    def value(self, key: str) -> Any:
        spec = KEYS_BY_NAME[key]
        return self.raw.get(full_key(key), spec.default)

    def string(self, key: str) -> str:
        value = self.value(key)
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.problem(full_key(key), value, "a string")
        return str(KEYS_BY_NAME[key].default)

    def boolean(self, key: str) -> bool:
        value = self.value(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.problem(full_key(key), value, "true or false")
        return bool(KEYS_BY_NAME[key].default)

    def integer(self, key: str, minimum: int, maximum: int | None = None) -> int:
        value = self.value(key)
        parsed: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            parsed = value
        elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            parsed = int(value)

        if maximum is None:
            bounds = f"an integer >= {minimum}"
        else:
            bounds = f"an integer from {minimum} to {maximum}"
        if parsed is None or parsed < minimum or (maximum is not None and parsed > maximum):
            self.problem(full_key(key), value, bounds)
            default = KEYS_BY_NAME[key].default
            return default if isinstance(default, int) else minimum
        return parsed

    def fraction(self, key: str, low: float, high: float, *, low_inclusive: bool) -> float:
        value = self.value(key)
        try:
            parsed = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            parsed = None

        in_range = parsed is not None and (
            (parsed >= low if low_inclusive else parsed > low) and parsed <= high
        )
        if parsed is None or not in_range:
            lower = "from" if low_inclusive else "greater than"
            self.problem(full_key(key), value, f"a decimal number {lower} {low} up to {high}")
            return float(str(KEYS_BY_NAME[key].default))
        return parsed

    def string_list(self, key: str) -> list[str]:
        value = self.value(key)
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else []
            except json.JSONDecodeError:
                self.problem(full_key(key), value, "a list of strings (a YAML or JSON array)")
                return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(full_key(key), value, "a list of strings (a YAML or JSON array)")
            return []
        return value

    def choice(self, key: str, choices: Sequence[str]) -> str:
        value = self.string(key)
        if value not in choices:
            self.problem(full_key(key), value, "one of " + ", ".join(choices))
            return str(KEYS_BY_NAME[key].default)
        return value

    def matching(self, key: str, pattern: re.Pattern[str], expected: str) -> str:
        value = self.string(key)
        if not pattern.match(value):
            self.problem(full_key(key), value, expected)
        return value


def parse_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate a mapping of full config keys to values and build the stack's settings.

    Values may be native YAML values or the strings ``pulumi`` passes, in which
    arrays are JSON. Keys missing from ``raw`` take the defaults of ``KEYS``.

    Raises:
        ConfigError: with every problem found, each naming key, value and expectation.
    """
    reader = _Reader(raw)
    _check_unknown_keys(reader)

    project, region, zone = _read_location(reader)
    environment = reader.choice("environment", ENVIRONMENTS)
    prefix = reader.matching(
        "prefix", _PREFIX, "2-12 lowercase letters, digits or '-', starting with a letter"
    )
    cmek = reader.boolean("cmek")
    if environment == "prod" and not cmek:
        reader.problem(full_key("cmek"), cmek, "true when environment is prod")

    extra_labels = _read_labels(reader)
    network = NetworkConfig(
        subnet_cidr=_read_cidr(reader),
        iap_ssh=reader.boolean("iapSsh"),
        cloud_nat=reader.boolean("cloudNat"),
    )
    dataflow = _read_dataflow(reader)
    if environment == "prod":
        _check_pinned_image(reader, dataflow.container_image)
    triage_mode = reader.choice("triageMode", TRIAGE_MODES)
    triage_rate = reader.fraction(
        "triageMaxPerSecond", 0.0, MAX_TRIAGE_PER_SECOND, low_inclusive=False
    )
    if triage_mode == "worker":
        _check_worker_gpus(reader, dataflow)
    gemma = _read_gemma(reader, triage_mode)
    alerts = _read_alerts(reader, environment)
    quota_email = _read_quota_email(reader, triage_mode)
    bigtable = BigtableConfig(
        nodes=reader.integer("bigtableNodes", 1, 1000),
        storage_type=cast(
            StorageType, reader.choice("bigtableStorageType", BIGTABLE_STORAGE_TYPES)
        ),
    )

    if reader.problems:
        raise ConfigError(reader.problems)

    labels = stack_labels(environment, extra_labels)
    return StackConfig(
        project=project,
        region=region,
        zone=zone,
        environment=cast(Environment, environment),
        prefix=prefix,
        cmek=cmek,
        labels=labels,
        network=network,
        dataflow=dataflow,
        triage_mode=cast(TriageMode, triage_mode),
        triage_max_per_second=triage_rate,
        gemma=gemma,
        alerts=alerts,
        quota_contact_email=quota_email,
        bigtable=bigtable,
        extra_labels=extra_labels,
    )


def _check_unknown_keys(reader: _Reader) -> None:
    namespace = f"{PROJECT_NAME}:"
    for key in reader.raw:
        if key.startswith(namespace) and key[len(namespace) :] not in KEYS_BY_NAME:
            reader.problems.append(
                f"{key}: unknown key; expected one of the keys declared in Pulumi.yaml "
                f"({', '.join(sorted(KEYS_BY_NAME))})"
            )


def _read_location(reader: _Reader) -> tuple[str, str, str]:
    project = reader.raw.get("gcp:project")
    if not isinstance(project, str) or not _PROJECT_ID.match(project):
        reader.problem(
            "gcp:project",
            project,
            "a project id (6-30 lowercase letters, digits or '-', starting with a letter); "
            "set it with `pulumi config set gcp:project PROJECT_ID`",
        )
        project = "invalid-project"

    region = reader.raw.get("gcp:region")
    if not isinstance(region, str) or region not in REGION_ZONES:
        reader.problem(
            "gcp:region",
            region,
            "a Google Cloud region such as us-central1 or europe-west4 (see REGION_ZONES "
            "in infra/config.py); set it with `pulumi config set gcp:region REGION`",
        )
        return project, "us-central1", "us-central1-a"

    zones = [f"{region}-{letter}" for letter in REGION_ZONES[region]]
    zone = reader.string("zone") or zones[0]
    if zone not in zones:
        reader.problem(full_key("zone"), zone, f"a zone of {region}: {', '.join(zones)}")
    return project, region, zone


def _read_cidr(reader: _Reader) -> str:
    value = reader.string("subnetCidr")
    expected = (
        "a private IPv4 range (inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16) "
        "from /8 to /29, e.g. 10.20.0.0/22"
    )
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        reader.problem(full_key("subnetCidr"), value, expected)
        return value

    private = any(network.subnet_of(block) for block in _PRIVATE_RANGES)
    if not private or not 8 <= network.prefixlen <= 29:
        reader.problem(full_key("subnetCidr"), value, expected)
    return value


def _read_labels(reader: _Reader) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in reader.string_list("labels"):
        key, separator, value = item.partition("=")
        if not separator:
            reader.problem(full_key("labels"), item, "key=value")
            continue
        if key in RESERVED_LABELS:
            reader.problem(
                full_key("labels"),
                item,
                f"a key other than {' or '.join(RESERVED_LABELS)}, which the stack sets itself",
            )
            continue
        labels[key] = value

    for message in label_errors(labels):
        reader.problems.append(f"{full_key('labels')}: {message}")
    return labels


def _read_dataflow(reader: _Reader) -> DataflowConfig:
    machine_type = reader.matching(
        "workerMachineType", _MACHINE_TYPE, "a Compute Engine machine type such as n2-standard-2"
    )
    initial = reader.integer("initialWorkers", 1, MAX_WORKERS)
    maximum = reader.integer("maxWorkers", 1, MAX_WORKERS)
    if maximum < initial:
        reader.problem(full_key("maxWorkers"), maximum, f"at least initialWorkers ({initial})")

    image = reader.string("containerImage")
    if image and not _IMAGE.match(image):
        reader.problem(
            full_key("containerImage"),
            image,
            "an image reference HOST/PATH:TAG or HOST/PATH@sha256:DIGEST, "
            "or empty for this stack's repository",
        )

    return DataflowConfig(
        machine_type=machine_type,
        initial_workers=initial,
        max_workers=maximum,
        streaming_mode=cast(StreamingMode, reader.choice("streamingMode", STREAMING_MODES)),
        container_image=image or None,
        gpus_per_worker=_read_accelerator_count(reader, "workerGpuCount"),
    )


def _check_pinned_image(reader: _Reader, image: str | None) -> None:
    # The Flex Template spec path is derived from the image reference, so a
    # moving tag never changes the spec and a new push would not reach the job.
    tag = image.rsplit(":", 1)[-1] if image and "@" not in image else None
    if image is None or tag == "latest":
        reader.problem(
            full_key("containerImage"),
            image or "",
            "an immutable tag or digest (HOST/PATH:v1.2.3 or HOST/PATH@sha256:DIGEST) "
            "when environment is prod, so each release relaunches the job",
        )


def _check_worker_gpus(reader: _Reader, dataflow: DataflowConfig) -> None:
    gpus_per_machine = G2_GPUS_PER_MACHINE.get(dataflow.machine_type)
    if gpus_per_machine is None:
        reader.problem(
            full_key("workerMachineType"),
            dataflow.machine_type,
            "a G2 machine type (L4 GPUs) when triageMode is worker: "
            + ", ".join(sorted(G2_GPUS_PER_MACHINE)),
        )
    elif dataflow.gpus_per_worker != gpus_per_machine:
        reader.problem(
            full_key("workerGpuCount"),
            dataflow.gpus_per_worker,
            f"{gpus_per_machine}, the number of L4 GPUs of {dataflow.machine_type}",
        )


def _read_accelerator_count(reader: _Reader, key: str) -> int:
    count = reader.integer(key, 1, 8)
    if count not in ACCELERATOR_COUNTS:
        reader.problem(full_key(key), count, "1, 2, 4 or 8")
    return count


def _read_gemma(reader: _Reader, triage_mode: str) -> GemmaConfig:
    model_id = reader.matching(
        "gemmaModelId",
        _PUBLISHER_MODEL,
        "a Model Garden name publishers/PUBLISHER/models/MODEL@VERSION, "
        "e.g. publishers/google/models/gemma3@gemma-3-1b-it",
    )
    machine_type = reader.matching(
        "gemmaMachineType", _MACHINE_TYPE, "a machine type such as g2-standard-12"
    )
    minimum = reader.integer("gemmaMinReplicas", 1)
    maximum = reader.integer("gemmaMaxReplicas", 1)
    if maximum < minimum:
        reader.problem(
            full_key("gemmaMaxReplicas"), maximum, f"at least gemmaMinReplicas ({minimum})"
        )

    accept = reader.boolean("acceptGemmaLicense")
    if triage_mode == "vertex" and not accept:
        reader.problem(
            full_key("acceptGemmaLicense"),
            accept,
            "true when triageMode is vertex: read the Gemma terms of use, then run "
            f"`pulumi config set {full_key('acceptGemmaLicense')} true`",
        )

    accelerator_count = _read_accelerator_count(reader, "gemmaAcceleratorCount")
    gpus_per_machine = G2_GPUS_PER_MACHINE.get(machine_type)
    if gpus_per_machine is None:
        reader.problem(
            full_key("gemmaMachineType"),
            machine_type,
            "a G2 machine type (L4 GPUs): " + ", ".join(sorted(G2_GPUS_PER_MACHINE)),
        )
    elif accelerator_count != gpus_per_machine:
        reader.problem(
            full_key("gemmaAcceleratorCount"),
            accelerator_count,
            f"{gpus_per_machine}, the number of L4 GPUs of {machine_type}",
        )

    return GemmaConfig(
        model_id=model_id,
        machine_type=machine_type,
        accelerator_type=reader.choice("gemmaAcceleratorType", VERTEX_ACCELERATOR_TYPES),
        accelerator_count=accelerator_count,
        min_replicas=minimum,
        max_replicas=maximum,
        accept_license=accept,
        private_endpoint=reader.boolean("privateEndpoint"),
    )


def _read_alerts(reader: _Reader, environment: str) -> AlertConfig:
    emails = reader.string_list("alertEmails")
    for email in emails:
        if not _EMAIL.match(email):
            reader.problem(
                full_key("alertEmails"), email, "an email address such as oncall@example.com"
            )
    duplicates = sorted({email for email in emails if emails.count(email) > 1})
    if duplicates:
        reader.problem(full_key("alertEmails"), duplicates, "each address listed once")
    if environment == "prod" and not emails:
        reader.problem(
            full_key("alertEmails"), emails, "at least one email address when environment is prod"
        )

    return AlertConfig(
        emails=tuple(emails),
        system_lag_seconds=reader.integer("alertSystemLagSeconds", 1),
        data_freshness_seconds=reader.integer("alertDataFreshnessSeconds", 1),
        dead_letter_backlog=reader.integer("alertDeadLetterBacklog", 0),
        anomaly_rate=reader.fraction("alertAnomalyRate", 0.0, 1.0, low_inclusive=False),
        triage_failures=reader.integer("alertTriageFailures", 1),
        endpoint_error_rate=reader.fraction(
            "alertEndpointErrorRate", 0.0, 1.0, low_inclusive=False
        ),
        endpoint_latency_ms=reader.integer("alertEndpointLatencyMs", 1),
    )


def _read_quota_email(reader: _Reader, triage_mode: str) -> str | None:
    email = reader.string("quotaContactEmail")
    if email and not _EMAIL.match(email):
        reader.problem(full_key("quotaContactEmail"), email, "an email address")
    elif not email and triage_mode in ("vertex", "worker"):
        reader.problem(
            full_key("quotaContactEmail"),
            email,
            f"an email address when triageMode is {triage_mode}, because the GPU quota "
            "request needs a contact",
        )
    return email or None


def load_config() -> StackConfig:
    """Read the running stack's configuration from Pulumi and validate it.

    Raises:
        ConfigError: with every problem found.
    """
    raw: dict[str, Any] = {}
    gcp = pulumi.Config("gcp")
    for key in ("project", "region"):
        value = gcp.get(key)
        if value is not None:
            raw[f"gcp:{key}"] = value

    project_prefix = f"{PROJECT_NAME}:"
    for key, value in _running_config().items():
        if key.startswith(project_prefix):
            raw[key] = value

    stack_config = pulumi.Config(PROJECT_NAME)
    for spec in KEYS:
        value = stack_config.get(spec.key)
        if value is not None:
            raw[full_key(spec.key)] = value
    return parse_config(raw)


def _running_config() -> dict[str, Any]:
    """Return every config key of the running program, so unknown keys can be reported."""
    # NOTE: pulumi.runtime.config.CONFIG is the SDK's store of the running
    # program's config (pulumi 3.272.0); it has no public accessor for all keys.
    from pulumi.runtime.config import CONFIG

    return dict(CONFIG.get())
