"""The serving app: a small PyTorch captioning model behind Flask.

``from mobile_multimodal import MobileMultiModalLLM`` works as the runbook expects; the
import is lazy so that importing the package (the config, the server's /health) does not
pull in torch, and a missing torch surfaces as ``ModelDependencyError`` (reason
``import_error``) when the model is first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mobile_multimodal.model import MobileMultiModalLLM

__all__ = ["MobileMultiModalLLM"]


def __getattr__(name: str) -> Any:
    if name != "MobileMultiModalLLM":
        raise AttributeError(f"module 'mobile_multimodal' has no attribute {name!r}")
    try:
        from mobile_multimodal.model import MobileMultiModalLLM
    except ImportError as exc:
        from mobile_multimodal.errors import ModelDependencyError

        raise ModelDependencyError(exc.name or "unknown", str(exc)) from exc
    return MobileMultiModalLLM
