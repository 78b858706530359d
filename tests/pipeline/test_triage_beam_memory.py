"""Tests for the restored memory probe of Beam's RunInference."""

# Beam's inference module does not export `resource`, and its memory probe has no annotations.
# mypy: disable-error-code="attr-defined,no-untyped-call"

import logging

import pytest
from apache_beam.ml.inference import base as inference_base

from pipeline.triage import TriageConfig, beam_memory
from tests.pipeline.test_triage_transform import FakeHandler, detections, run_triage

BEAM_WARNING = "Resource module is not available"


def test_probe_measures_memory_after_import():
    assert inference_base.resource is not None
    assert inference_base._get_current_process_memory_in_bytes() > 0


def test_model_load_logs_no_resource_warning(caplog: pytest.LogCaptureFixture):
    config = TriageConfig(handler="local", max_per_second=100.0)
    with caplog.at_level(logging.WARNING):
        out, _, _, _ = run_triage(detections("ok-1"), config, model_handler=FakeHandler())
    assert [d.triage.status for d in out] == ["done"]
    assert [r.getMessage() for r in caplog.records if BEAM_WARNING in r.getMessage()] == []


def test_restore_fills_missing_module(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(inference_base, "resource", None)
    assert beam_memory.restore_memory_probe() is True
    assert inference_base.resource is not None


def test_restore_without_module_keeps_fallback(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(inference_base, "resource", None)
    monkeypatch.setattr(beam_memory, "_standard_resource_module", lambda: None)
    assert beam_memory.restore_memory_probe() is False
    assert inference_base.resource is None
