"""Memory probe of Beam's RunInference, which Apache Beam 2.77 turns off without torch.

Beam 2.77 imports the standard `resource` module in the same try block as its
torch-based ModelManager (`apache_beam/ml/inference/base.py`). Without torch, which
this pipeline does not install, the ImportError sets Beam's `resource` to None even on
Linux, where the module exists. RunInference then logs "Resource module is not
available for current platform" twice per model load, once before and once after,
and reports the model's memory as 0 bytes.
"""

from __future__ import annotations

from types import ModuleType

from apache_beam.ml.inference import base as inference_base


def _standard_resource_module() -> ModuleType | None:
    try:
        import resource
    except ImportError:  # Windows has no `resource` module.
        return None
    return resource


def restore_memory_probe() -> bool:
    """Give Beam's RunInference the `resource` module when Beam set it to None.

    Returns True when the probe works after the call. Beam's own fallback stays in
    place on a platform without the module, so its warning still appears there.
    """
    if getattr(inference_base, "resource", None) is not None:
        return True
    module = _standard_resource_module()
    if module is None:
        return False
    inference_base.resource = module  # type: ignore[attr-defined]
    return True
