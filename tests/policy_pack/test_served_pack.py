"""The pack as the Pulumi CLI runs it (`python -m pulumi.policy ENGINE policies`), over gRPC."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policies.rules import ALL_RULES

POLICIES_DIR = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """Start the pack the way the CLI does and connect to the port it prints.

    The CLI's pulumi-analyzer-policy-python script runs `python -u -m
    pulumi.policy ENGINE_ADDRESS PACK_DIR` with the pack's virtualenv, and
    pulumi.policy runs PACK_DIR/__main__.py. That launcher does not use the
    engine address, so any value works here.
    """
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICIES_DIR)],
        cwd=POLICIES_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            process.kill()
            _, err = process.communicate(timeout=10)
            pytest.fail(f"policy pack printed {line!r} instead of a port; stderr: {err}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=10)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def _struct(document: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(document, message)
    return message


def _analyze(analyzer: Any, resource_type: str, props: dict[str, Any]) -> list[Any]:
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type,
        properties=_struct(props),
        urn=f"urn:pulumi:prod::anomaly::{resource_type}::res",
        name="res",
        options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
    )
    return list(analyzer.Analyze(request).diagnostics)


def test_served_policies(analyzer: Any) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert [policy.name for policy in info.policies] == [rule.name for rule in ALL_RULES]
    assert info.supportsConfig


def test_served_violation(analyzer: Any) -> None:
    diagnostics = _analyze(
        analyzer, "gcp:storage/bucket:Bucket", {"publicAccessPrevention": "inherited"}
    )
    by_policy = {d.policyName: d for d in diagnostics}
    assert "storage-public-access-prevention" in by_policy
    diagnostic = by_policy["storage-public-access-prevention"]
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert 'publicAccessPrevention is "inherited"' in diagnostic.message


def test_served_config(analyzer: Any) -> None:
    document = json.loads((POLICIES_DIR / "config" / "dev.json").read_text(encoding="utf-8"))
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, entry in document.items():
        if name == "all" or not isinstance(entry, dict):
            continue
        properties = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        request.policyConfig[name].CopyFrom(
            analyzer_pb2.PolicyConfig(
                enforcementLevel=analyzer_pb2.MANDATORY, properties=_struct(properties)
            )
        )
    analyzer.Configure(request)

    diagnostics = _analyze(analyzer, "gcp:pubsub/topic:Topic", {"labels": {"environment": "dev"}})
    assert {d.policyName for d in diagnostics} == {"labels-required"}

    # The Struct turns dev's maxWorkers 5 into 5.0; the policy still reads it as a bound of 5.
    job = {
        "ipConfiguration": "WORKER_IP_PRIVATE",
        "subnetwork": "regions/us-central1/subnetworks/workers",
        "serviceAccountEmail": "runner@p.iam.gserviceaccount.com",
        "enableStreamingEngine": True,
        "maxWorkers": 6,
        "labels": {"environment": "dev", "app": "realtime-anomaly"},
    }
    diagnostics = _analyze(analyzer, "gcp:dataflow/flexTemplateJob:FlexTemplateJob", job)
    messages = {d.policyName: d.message for d in diagnostics}
    assert set(messages) == {"dataflow-max-workers"}
    assert "expected an integer from 1 to 5" in messages["dataflow-max-workers"]
