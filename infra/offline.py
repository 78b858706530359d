"""Run the Pulumi program offline under mocks and return every resource it declares.

``run_stack("dev")`` reads the config defaults from Pulumi.yaml and the values
of Pulumi.dev.yaml, runs ``infra.program.main`` with ``pulumi.runtime.set_mocks``
and returns one ``DeclaredResource`` per registered resource, components
included. Nothing contacts Google Cloud: the mocks return deterministic
outputs (IDs, emails, a fixed project number) and return results for the data
sources the program calls. The policy gate, the plan printer and the inventory tests use
this runner.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import ROOT

from infra.config import PROJECT_NAME, ConfigError, parse_config

LOG = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
MOCK_PROJECT_NUMBER = "123456789012"
"""Project number the mocks return from ``gcp:organizations/getProject``."""

STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class DeclaredResource:
    """One resource the program registered, as the Pulumi engine would receive it."""

    type: str
    """Type token such as ``gcp:storage/bucket:Bucket`` or ``anomaly:storage:Storage``."""
    name: str
    """Pulumi logical name."""
    urn: str
    inputs: dict[str, Any]
    """Input properties with the engine's camelCase names, as a policy pack receives them.
    Unknown values (outputs of other resources during a preview) never occur here,
    because the mocks resolve every output."""
    protect: bool
    """Pulumi ``protect`` option, as sent to the engine."""
    parent: str | None
    """URN of the parent resource; ``None`` for resources parented to the stack."""
    depends_on: tuple[str, ...]
    """URNs of the resources this one waits for: explicit ``depends_on`` and the
    resources whose outputs feed its inputs."""
    custom: bool = True
    """False for component resources, which have no cloud counterpart."""
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """URNs feeding each input property."""


class UnknownStackError(ValueError):
    """The stack has no ``Pulumi.<stack>.yaml`` file."""


class StackFileError(ValueError):
    """``Pulumi.yaml`` or a stack file cannot be read or is not a YAML mapping."""


class _Mocks(pulumi_mocks.Mocks):
    """Deterministic outputs for resources and results for the data sources the program calls."""

    def __init__(self, project: str) -> None:
        self.project = project

    def new_resource(
        self, args: pulumi_mocks.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        resource_id = _mock_id(args.typ, args.name, outputs, self.project)
        outputs.update(_computed_outputs(args.typ, outputs, self.project))
        outputs.setdefault("id", resource_id)
        return resource_id, outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        project = args.args.get("project") or args.args.get("projectId") or self.project
        number = MOCK_PROJECT_NUMBER
        if args.token == "gcp:organizations/getProject:getProject":
            return {
                "projectId": project,
                "number": number,
                "name": project,
                "id": f"projects/{project}",
            }
        if args.token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            email = f"service-{number}@gs-project-accounts.iam.gserviceaccount.com"
            return {"emailAddress": email, "member": f"serviceAccount:{email}"}
        if args.token == "gcp:bigquery/getDefaultServiceAccount:getDefaultServiceAccount":
            email = f"bq-{number}@bigquery-encryption.iam.gserviceaccount.com"
            return {"email": email, "member": f"serviceAccount:{email}"}
        msg = (
            f"the offline mocks do not answer the data source {args.token!r}; "
            "add it to _Mocks.call in infra/offline.py"
        )
        raise NotImplementedError(msg)


_ID_FORMATS: Mapping[str, str] = {
    "gcp:pubsub/topic:Topic": "projects/{project}/topics/{name}",
    "gcp:pubsub/subscription:Subscription": "projects/{project}/subscriptions/{name}",
    "gcp:kms/keyRing:KeyRing": "projects/{project}/locations/{location}/keyRings/{name}",
    "gcp:kms/cryptoKey:CryptoKey": "{keyRing}/cryptoKeys/{name}",
    "gcp:compute/network:Network": "projects/{project}/global/networks/{name}",
    "gcp:compute/subnetwork:Subnetwork": "projects/{project}/regions/{region}/subnetworks/{name}",
    "gcp:bigquery/dataset:Dataset": "projects/{project}/datasets/{datasetId}",
    "gcp:bigquery/table:Table": "projects/{project}/datasets/{datasetId}/tables/{tableId}",
    "gcp:bigtable/instance:Instance": "projects/{project}/instances/{name}",
    "gcp:storage/bucket:Bucket": "{name}",
    "gcp:serviceaccount/account:Account": (
        "projects/{project}/serviceAccounts/{accountId}@{project}.iam.gserviceaccount.com"
    ),
    "gcp:artifactregistry/repository:Repository": (
        "projects/{project}/locations/{location}/repositories/{repositoryId}"
    ),
}
"""Resource IDs in the formats the provider returns, so that IDs used as inputs look real."""

_SERVICE_IDENTITY_DOMAINS: Mapping[str, str] = {
    "pubsub.googleapis.com": "gcp-sa-pubsub",
    "bigtableadmin.googleapis.com": "gcp-sa-bigtable",
    "artifactregistry.googleapis.com": "gcp-sa-artifactregistry",
    "aiplatform.googleapis.com": "gcp-sa-aiplatform",
}

COMPUTE_API = "https://www.googleapis.com/compute/v1"


def _mock_id(typ: str, name: str, inputs: Mapping[str, Any], project: str) -> str:
    template = _ID_FORMATS.get(typ)
    if template is None:
        return f"{name}-id"
    values = {key: value for key, value in inputs.items() if isinstance(value, str | int)}
    values.setdefault("project", project)
    values.setdefault("name", name)
    return template.format_map(values)


def _service_account_outputs(inputs: Mapping[str, Any], project: str) -> dict[str, Any]:
    email = f"{inputs.get('accountId')}@{project}.iam.gserviceaccount.com"
    return {"email": email, "member": f"serviceAccount:{email}", "uniqueId": "1" * 21}


def _service_identity_outputs(inputs: Mapping[str, Any], project: str) -> dict[str, Any]:
    domain = _SERVICE_IDENTITY_DOMAINS.get(str(inputs.get("service")), "gcp-sa-unknown")
    email = f"service-{MOCK_PROJECT_NUMBER}@{domain}.iam.gserviceaccount.com"
    return {"email": email, "member": f"serviceAccount:{email}"}


def _bucket_outputs(inputs: Mapping[str, Any], project: str) -> dict[str, Any]:
    bucket = inputs.get("name")
    return {
        "url": f"gs://{bucket}",
        "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket}",
    }


def _subnetwork_outputs(inputs: Mapping[str, Any], project: str) -> dict[str, Any]:
    path = f"projects/{project}/regions/{inputs.get('region')}/subnetworks/{inputs.get('name')}"
    return {"selfLink": f"{COMPUTE_API}/{path}"}


def _network_outputs(inputs: Mapping[str, Any], project: str) -> dict[str, Any]:
    return {"selfLink": f"{COMPUTE_API}/projects/{project}/global/networks/{inputs.get('name')}"}


def _endpoint_outputs(inputs: Mapping[str, Any], project: str) -> dict[str, Any]:
    return {"endpoint": "4242424242424242424", "deployedModelId": "8484848484848484848"}


def _job_outputs(inputs: Mapping[str, Any], project: str) -> dict[str, Any]:
    return {"jobId": "2026-01-01_00_00_00-1234567890123456789", "state": "JOB_STATE_RUNNING"}


_COMPUTED_OUTPUTS: Mapping[str, Callable[[Mapping[str, Any], str], dict[str, Any]]] = {
    "gcp:serviceaccount/account:Account": _service_account_outputs,
    "gcp:projects/serviceIdentity:ServiceIdentity": _service_identity_outputs,
    "gcp:storage/bucket:Bucket": _bucket_outputs,
    "gcp:compute/subnetwork:Subnetwork": _subnetwork_outputs,
    "gcp:compute/network:Network": _network_outputs,
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": (
        _endpoint_outputs
    ),
    "gcp:dataflow/flexTemplateJob:FlexTemplateJob": _job_outputs,
}
"""Outputs that GCP computes and the program reads from other resources, by type."""


def _computed_outputs(typ: str, inputs: Mapping[str, Any], project: str) -> dict[str, Any]:
    compute = _COMPUTED_OUTPUTS.get(typ)
    outputs = {"project": inputs.get("project", project)}
    if compute is not None:
        outputs.update(compute(inputs, project))
    return outputs


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Mock monitor that records each registration's options (protect, parent, dependencies)."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.declared: list[DeclaredResource] = []

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        try:
            return super().Invoke(request)  # type: ignore[no-untyped-call]
        finally:
            _remember_thread_loop()

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        try:
            return super().ReadResource(request)  # type: ignore[no-untyped-call]
        finally:
            _remember_thread_loop()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        try:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        finally:
            _remember_thread_loop()
        if request.type == "pulumi:pulumi:Stack":
            return response

        inputs = rpc.deserialize_properties(request.object)
        property_dependencies = {
            key: tuple(value.urns) for key, value in request.propertyDependencies.items()
        }
        self.declared.append(
            DeclaredResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=_plain(inputs),
                protect=bool(request.protect) if request.HasField("protect") else False,
                parent=request.parent or None,
                depends_on=tuple(sorted(set(request.dependencies))),
                custom=bool(request.custom),
                property_dependencies=property_dependencies,
            )
        )
        return response


def _plain(value: Any) -> Any:
    """Convert deserialized values (which may include resource references) to plain data."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, pulumi.Resource):
        return f"<resource {type(value).__name__}>"
    return value


def stack_config(
    stack: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    project_dir: Path | None = None,
) -> dict[str, Any]:
    """Merge the Pulumi.yaml defaults, the values of ``Pulumi.<stack>.yaml`` and ``overrides``.

    Override keys may be full (``gcp:region``, ``realtime-anomaly:cmek``) or
    short project keys (``cmek``).

    Raises:
        UnknownStackError: the stack name is invalid or its file does not exist.
    """
    root = project_dir or REPO_ROOT
    if not STACK_NAME.match(stack):
        msg = f"stack name {stack!r} is invalid; expected letters, digits, '-', '_' or '.'"
        raise UnknownStackError(msg)
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        available = sorted(
            path.name[len("Pulumi.") : -len(".yaml")] for path in root.glob("Pulumi.*.yaml")
        )
        listed = ", ".join(available) if available else "none"
        msg = f"stack {stack!r} has no {stack_file.name} in {root}; available stacks: {listed}"
        raise UnknownStackError(msg)

    project_file = _load_yaml(root / "Pulumi.yaml")
    namespace = project_file.get("name", PROJECT_NAME)
    raw: dict[str, Any] = {}
    for key, declaration in (project_file.get("config") or {}).items():
        if isinstance(declaration, Mapping) and "default" in declaration:
            raw[_full_key(namespace, key)] = declaration["default"]
        elif isinstance(declaration, Mapping) and "value" in declaration:
            raw[_full_key(namespace, key)] = declaration["value"]

    stack_values = _load_yaml(stack_file).get("config") or {}
    for key, value in stack_values.items():
        raw[_full_key(namespace, key)] = value
    for key, value in (overrides or {}).items():
        raw[_full_key(namespace, key)] = value
    return raw


def _load_yaml(path: Path) -> Mapping[str, Any]:
    """Read a Pulumi project or stack file, raising StackFileError when it is not a YAML mapping."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise StackFileError(f"{path} cannot be read: {error}") from error
    except yaml.YAMLError as error:
        raise StackFileError(
            f"{path} is not valid YAML ({error}); fix the line it names"
        ) from error
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise StackFileError(
            f"{path} holds a {type(document).__name__}; expected a mapping with a 'config' key"
        )
    return document


def _full_key(namespace: str, key: str) -> str:
    return key if ":" in key else f"{namespace}:{key}"


def _engine_value(value: Any) -> str:
    """Encode a config value as the engine passes it: strings as is, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


# Event loops that Pulumi's mock monitor created in executor threads, closed at exit.
_THREAD_LOOPS: set[asyncio.AbstractEventLoop] = set()


def _remember_thread_loop() -> None:
    """Remember the calling thread's event loop, which the mock monitor creates and keeps."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # no loop in this thread
        return
    _THREAD_LOOPS.add(loop)


def _close_event_loops() -> None:
    for loop in [asyncio.get_event_loop_policy().get_event_loop(), *_THREAD_LOOPS]:
        if not loop.is_closed() and not loop.is_running():
            loop.close()


def _close_event_loops_at_exit() -> None:
    """Close the event loops that Pulumi runs programs and mock calls on, when Python exits.

    Pulumi never closes them: the main thread's loop, and one per executor thread that
    the mock monitor serves calls on. A loop left open is finalized after its sockets at
    interpreter exit, which prints an "Invalid file descriptor" traceback. They are
    closed only at exit because futures of one run stay attached to them.
    """
    global _EXIT_HOOK_REGISTERED  # noqa: PLW0603 (one hook per process)
    if not _EXIT_HOOK_REGISTERED:
        atexit.register(_close_event_loops)
        _EXIT_HOOK_REGISTERED = True


_EXIT_HOOK_REGISTERED = False


def run_stack(
    stack: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    project_dir: Path | None = None,
) -> list[DeclaredResource]:
    """Run the program for ``stack`` under mocks and return every declared resource.

    Config is validated first, so an invalid stack raises ``ConfigError`` before
    any resource is declared. The Pulumi runtime's settings are process-global,
    so calls must not run concurrently in one process.

    Raises:
        UnknownStackError: the stack does not exist.
        ConfigError: the merged config is invalid; the error lists every problem.
    """
    from infra import program

    raw = stack_config(stack, overrides=overrides, project_dir=project_dir)
    parse_config(raw)

    project = str(raw.get("gcp:project"))
    mocks = _Mocks(project)
    monitor = _RecordingMonitor(mocks)
    set_all_config({key: _engine_value(value) for key, value in raw.items()})
    # set_mocks keeps an existing root stack resource; a fresh one per run keeps
    # the outputs of an earlier run out of this one.
    ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT_NAME, stack=stack, preview=False, monitor=monitor
    )

    pulumi.runtime.mocks.test(program.main)()  # type: ignore[no-untyped-call]
    _close_event_loops_at_exit()
    LOG.info("stack %s declared %d resources", stack, len(monitor.declared))
    return list(monitor.declared)


__all__ = ["ConfigError", "DeclaredResource", "UnknownStackError", "run_stack", "stack_config"]
