"""The model manager: loads the primary model, falls back, and says why.

States (with a `reason` beside every failure): LOADING → READY (primary serving),
DEGRADED (primary failed, fallback serving) or FAILED (nothing serving). A load runs under
its own timeout, separate from request timeouts; a failed reload keeps what is serving.
torch is imported lazily, inside the load, so a broken image still serves /health and says
`import_error` instead of crashing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from mobile_multimodal.config import ServeConfig
from mobile_multimodal.errors import ModelDeviceError, ModelError, ModelLoadTimeout
from mobile_multimodal.metrics import FAILURE_REASONS, ServingMetrics

__all__ = ["CaptionModel", "ModelManager", "ModelState", "Status", "resolve_device"]

log = logging.getLogger("mobile_multimodal.model")


class ModelState(StrEnum):
    LOADING = "LOADING"
    READY = "READY"
    DEGRADED = "DEGRADED"
    FAILED = "FAILED"


class CaptionModel(Protocol):
    variant: str

    def caption(self, image: Any) -> str: ...


Loader = Callable[[str, str, Path], CaptionModel]
"""(name or path, device, model directory) → a model; raises ModelError subclasses."""


@dataclass(frozen=True)
class Status:
    state: ModelState
    reason: str | None
    variant: str | None
    fallback_active: bool
    fallback_available: bool
    model_type: str | None

    @property
    def model_loaded(self) -> bool:
        return self.state is ModelState.READY


def default_loader(name_or_path: str, device: str, model_dir: Path) -> CaptionModel:
    try:
        from mobile_multimodal.model import MobileMultiModalLLM
    except ImportError as exc:
        from mobile_multimodal.errors import ModelDependencyError

        raise ModelDependencyError(exc.name or "unknown", str(exc)) from None
    model: CaptionModel = MobileMultiModalLLM.from_pretrained(name_or_path, model_dir=model_dir,
                                                              device=device)
    return model


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(wanted: str, env: Mapping[str, str],
                   has_cuda: Callable[[], bool] = cuda_available) -> str:
    """`auto` → cpu unless a GPU is visible; CUDA_VISIBLE_DEVICES="" forces cpu (runbook #3)."""
    if env.get("CUDA_VISIBLE_DEVICES", None) == "" and wanted != "cpu":
        log.warning("CUDA_VISIBLE_DEVICES is empty: forcing device cpu (config said %s)", wanted)
        return "cpu"
    if wanted == "cpu":
        return "cpu"
    if wanted == "auto":
        return "cuda" if has_cuda() else "cpu"
    if not has_cuda():
        raise ModelDeviceError(wanted)
    return "cuda"


def resident_bytes() -> int:
    """Resident set size of this process (VmRSS), what the memory alert watches."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class ModelManager:
    def __init__(self, config: ServeConfig, metrics: ServingMetrics, *,
                 loader: Loader = default_loader, config_error: ModelError | None = None,
                 env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.metrics = metrics
        self._loader = loader
        self._env = os.environ if env is None else env
        self._clock = clock
        self._lock = threading.Lock()
        self._config_error = config_error
        self._model: CaptionModel | None = None
        self._status = Status(ModelState.LOADING, None, None, False, False, None)
        self._load_started: float | None = None
        self.inference_count = 0
        self.last_inference_time: float | None = None
        metrics.load_in_progress.set_function(self._in_progress_seconds)
        metrics.memory.set_function(lambda: float(resident_bytes()))
        self._publish()

    # -- loading --------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """Load in the background so the server answers /health while it loads."""
        thread = threading.Thread(target=self.load, name="model-load", daemon=True)
        thread.start()
        return thread

    def load(self) -> Status:
        if self._config_error is not None:
            self._record_failure(self._config_error, "primary")
            return self._finish(None, None, self._config_error.reason, str(self._config_error))
        self._set_loading()
        started = self._clock()
        primary, primary_error = self._try_load(str(self.config.primary_path), "primary")
        self.metrics.load_duration.set(self._clock() - started)
        if primary is not None:
            return self._finish(primary, False, None, None)
        fallback = None
        if self.config.fallback_model:
            fallback, _ = self._try_load(self.config.fallback_model, "fallback")
        assert primary_error is not None
        return self._finish(fallback, fallback is not None, primary_error[0], primary_error[1])

    def _try_load(self, name: str, role: str) -> tuple[CaptionModel | None, tuple[str, str] | None]:
        log.info("Loading %s model %s (timeout %.0fs)", role, name, self.config.load_timeout)
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                device = resolve_device(self.config.device, self._env)
                result["model"] = self._loader(name, device, self.config.model_dir)
            except ModelError as exc:
                result["error"] = exc
            except MemoryError:
                from mobile_multimodal.errors import ModelOutOfMemory

                result["error"] = ModelOutOfMemory(name)
            except Exception as exc:  # any other loader bug must not kill the server
                result["error"] = ModelError(f"{type(exc).__name__}: {exc}", name)

        worker = threading.Thread(target=work, name=f"load-{role}", daemon=True)
        worker.start()
        worker.join(self.config.load_timeout)
        if worker.is_alive():
            result["error"] = ModelLoadTimeout(
                f"TimeoutError: model load of {name} still running after "
                f"{self.config.load_timeout:.0f}s; abandoned", name)
        if "model" in result:
            log.info("Model %s loaded (%s)", name, role)
            return result["model"], None
        exc = result["error"]
        self._record_failure(exc, role)
        return None, (exc.reason, str(exc))

    def _record_failure(self, exc: ModelError, role: str) -> None:
        reason = exc.reason if exc.reason in FAILURE_REASONS else "unknown"
        self.metrics.load_failures.labels(reason=reason).inc()
        log.error("Model load failed (%s model): %s", role, exc)

    def _set_loading(self) -> None:
        with self._lock:
            self._load_started = self._clock()
            if self._model is None:
                self._status = Status(ModelState.LOADING, None, None, False, False, None)
        self._publish()

    def _finish(self, model: CaptionModel | None, fallback: bool | None, reason: str | None,
                message: str | None) -> Status:
        with self._lock:
            self._load_started = None
            if model is None and self._model is not None:
                # A failed reload keeps the model already serving.
                log.error("Reload failed (%s); keeping the model already serving", reason)
                return self._status
            self._model = model
            self._status = self._status_for(model, bool(fallback), reason, message)
        self._publish()
        return self._status

    def _status_for(self, model: CaptionModel | None, fallback: bool, reason: str | None,
                    message: str | None) -> Status:
        variant = getattr(model, "variant", None) if model else None
        if model is None:
            return Status(ModelState.FAILED, message, None, False, False, None)
        if fallback:
            return Status(ModelState.DEGRADED, message, variant, True, True, "fallback")
        return Status(ModelState.READY, None, variant, False, bool(self.config.fallback_model),
                      "primary")

    def _publish(self) -> None:
        status = self._status
        self.metrics.loaded.set(1 if status.state is ModelState.READY else 0)
        self.metrics.fallback_active.set(1 if status.fallback_active else 0)

    def _in_progress_seconds(self) -> float:
        started = self._load_started
        return 0.0 if started is None else max(0.0, self._clock() - started)

    # -- serving --------------------------------------------------------------------------
    @property
    def status(self) -> Status:
        return self._status

    def caption(self, image: bytes) -> tuple[str, str]:
        """Caption an image with whatever model serves; raises LookupError when none does."""
        model = self._model
        if model is None:
            raise LookupError(self._status.reason or "no model loaded")
        text = model.caption(image)
        with self._lock:
            self.inference_count += 1
            self.last_inference_time = time.time()
        return text, model.variant

    def model_path(self) -> Path:
        return self.config.primary_path
