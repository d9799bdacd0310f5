"""The model manager: loads the primary model, falls back, and says why.

States (with a ``reason`` beside every failure): LOADING → READY (primary serving),
DEGRADED (primary failed, fallback serving) or FAILED (nothing serving). Every load runs
under its own timeout (``load_timeout``), separate from request timeouts. A reload that
fails keeps what is serving: a primary that serves is never swapped for the fallback, and a
fallback that serves is kept, its ``reason`` the latest failed attempt's. A primary refused
for want of CUDA has the fallback loaded on cpu. torch is imported lazily, inside the load,
so a broken image still serves /health and says ``import_error`` instead of crashing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from mobile_multimodal.config import ServeConfig
from mobile_multimodal.errors import (
    ModelDependencyError,
    ModelDeviceError,
    ModelError,
    ModelLoadTimeout,
    ModelOutOfMemory,
)
from mobile_multimodal.manifest import file_checksum_ok
from mobile_multimodal.metrics import FAILURE_REASONS, ServingMetrics
from mobile_multimodal.oom import clear_oom_restarts, oom_restarts

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
    """What /health and /model/health report. ``reason`` is why the primary is not serving
    (None when it is); ``checksum_ok`` is the primary file's sha256 check against the
    manifest at the last load (None: missing, unreadable or not listed)."""

    state: ModelState
    reason: str | None = None
    variant: str | None = None
    fallback_active: bool = False
    fallback_available: bool = False
    model_type: str | None = None
    checksum_ok: bool | None = None
    device: str | None = None

    @property
    def model_loaded(self) -> bool:
        """True only when the primary serves (the runbook's healthy)."""
        return self.state is ModelState.READY

    @property
    def serving(self) -> bool:
        return self.state in (ModelState.READY, ModelState.DEGRADED)


@dataclass(frozen=True)
class Attempt:
    """One model load: the model, or the error's reason label and message."""

    model: CaptionModel | None
    device: str | None = None
    reason: str | None = None
    message: str | None = None


def default_loader(name_or_path: str, device: str, model_dir: Path) -> CaptionModel:
    try:
        from mobile_multimodal.model import MobileMultiModalLLM
    except ImportError as exc:
        raise ModelDependencyError(exc.name or "unknown", str(exc)) from None
    model: CaptionModel = MobileMultiModalLLM.from_pretrained(name_or_path, model_dir=model_dir,
                                                              device=device)
    return model


def cuda_available() -> bool:
    try:
        import torch
    except ImportError as exc:
        raise ModelDependencyError(exc.name or "torch", str(exc)) from None
    return bool(torch.cuda.is_available())


def resolve_device(wanted: str, env: Mapping[str, str],
                   has_cuda: Callable[[], bool] = cuda_available) -> str:
    """`auto` → cpu unless a GPU is visible; CUDA_VISIBLE_DEVICES="" forces cpu (runbook #3)."""
    if env.get("CUDA_VISIBLE_DEVICES", None) == "" and wanted != "cpu":
        if wanted != "auto":
            # Worded without the variable's name: playbooks classify logs mentioning CUDA as
            # a GPU failure, and this line is the fix working, not a failure.
            log.warning("Using device cpu: the config asks for a GPU but the environment "
                        "hides every GPU")
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


def _as_model_error(exc: BaseException, name: str) -> ModelError:
    """Any exception a loader raises, as a ModelError with a reason label."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, MemoryError):
        return ModelOutOfMemory(name)
    if ModelOutOfMemory.matches(exc):  # torch raises RuntimeError: "CUDA out of memory"
        first = next(iter(str(exc).splitlines()), "")
        return ModelOutOfMemory(name, f"{type(exc).__name__}: {first}"[:200])
    if isinstance(exc, ImportError):
        return ModelDependencyError(exc.name or "unknown", str(exc))
    return ModelError(f"{type(exc).__name__}: {exc}", name)


class ModelManager:
    def __init__(self, config: ServeConfig, metrics: ServingMetrics, *,
                 loader: Loader = default_loader, config_error: ModelError | None = None,
                 env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 checksum: Callable[[Path], bool | None] = file_checksum_ok,
                 config_source: Callable[[], ServeConfig] | None = None,
                 oom_marker: Path | None = None) -> None:
        self.config = config
        self._config_source = config_source  # re-read on reload (config file + environment)
        self.metrics = metrics
        self._loader = loader
        self._env = os.environ if env is None else env
        self._clock = clock
        self._checksum = checksum
        self._lock = threading.Lock()
        self._config_error = config_error
        self._model: CaptionModel | None = None
        self._status = Status(ModelState.LOADING)
        self._load_started: float | None = None
        self._abandoned: list[threading.Thread] = []  # loads past load_timeout, still running
        self.inference_count = 0
        self.last_inference_time: float | None = None
        self.last_error: str | None = None
        self.last_load_seconds: float | None = None
        metrics.load_in_progress.set_function(self._in_progress_seconds)
        metrics.memory.set_function(lambda: float(resident_bytes()))
        # OOM kills the gunicorn master recorded before this start (oom.py): shown until
        # the primary serves again, so a crash loop is reported, not guessed at.
        self._oom_marker = oom_marker
        self._oom_restarts = 0 if oom_marker is None else oom_restarts(oom_marker)
        self._publish()

    # -- loading --------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """Load in the background so the server answers /health while it loads. As for a
        reload, the load counts as in progress from this call on: no request sees
        ``loading`` false before the first load has an outcome."""
        began = self._begin()  # False: a load is running; self.load then just says so
        thread = threading.Thread(target=self._load_begun if began else self.load,
                                  name="model-load", daemon=True)
        thread.start()
        return thread

    def reload(self) -> bool:
        """Start a background reload; False when a load is already running. The load counts
        as in progress from this call on (so a poll right after it sees ``loading``).

        The configuration is read again first, so an edited config file (say, a new
        model_path) takes effect without a restart; a config that no longer parses fails
        the reload and the model already serving keeps serving."""
        self._refresh_config()
        if self._config_error is not None:
            self.start()
            return True
        if not self._begin():
            return False
        threading.Thread(target=self._load_begun, name="model-reload", daemon=True).start()
        return True

    def _refresh_config(self) -> None:
        if self._config_source is None:
            return
        try:
            config, error = self._config_source(), None
        except ModelError as exc:
            config, error = self.config, exc
        with self._lock:
            if self._load_started is None:  # a running load keeps the config it started with
                self.config, self._config_error = config, error

    def load(self) -> Status:
        """Load the primary (else the fallback); returns the resulting status."""
        if not self._begin():
            return self._status
        return self._load_begun()

    def _load_begun(self) -> Status:
        """The load that _begin() marked in progress; every path ends in _finish()."""
        if self._config_error is not None:
            self._record_failure(self._config_error, "config")
            return self._finish(Attempt(None, None, self._config_error.reason,
                                        str(self._config_error)), None, None)
        started = self._clock()
        attempt, role = self._load_models()
        self.last_load_seconds = self._clock() - started
        self.metrics.load_duration.set(self.last_load_seconds)
        return self._finish(attempt, role, self._checksum(self.config.primary_path))

    def _load_models(self) -> tuple[Attempt, str | None]:
        primary = self._try_load(str(self.config.primary_path), "primary")
        if primary.model is not None:
            return primary, "primary"
        if self._model is not None or not self.config.fallback_model:
            return primary, None  # a failed reload keeps what serves; no fallback to try
        # No GPU for the primary means none for the fallback either: it degrades to cpu.
        cpu = primary.reason == ModelDeviceError.reason
        if cpu:
            log.warning("Loading the fallback model on cpu: the configured device is not "
                        "available on this machine")
        fallback = self._try_load(self.config.fallback_model, "fallback",
                                  "cpu" if cpu else self.config.device)
        if fallback.model is None:
            return primary, None
        return replace(fallback, reason=primary.reason, message=primary.message), "fallback"

    def _try_load(self, name: str, role: str, device: str | None = None) -> Attempt:
        # The configured device is not logged here: playbooks classify any log line that
        # mentions CUDA as a GPU failure, and this line is not one.
        wanted = self.config.device if device is None else device
        log.info("Loading %s model %s (timeout %.0fs)", role, name, self.config.load_timeout)
        started = self._clock()
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["device"] = resolve_device(wanted, self._env)
                result["model"] = self._loader(name, result["device"], self.config.model_dir)
            except BaseException as exc:  # a loader bug must not kill the server
                result["error"] = _as_model_error(exc, name)

        worker = threading.Thread(target=work, name=f"load-{role}", daemon=True)
        worker.start()
        worker.join(self.config.load_timeout)
        if worker.is_alive():  # a thread cannot be stopped: no new load starts beside it
            with self._lock:
                self._abandoned.append(worker)
            result["error"] = ModelLoadTimeout(
                f"TimeoutError: model load of {name} still running after "
                f"{self.config.load_timeout:.0f}s (load_timeout); abandoned", name)
        elif "model" in result:
            log.info("Model loaded: %s model %s (variant %s, on %s) in %.2fs", role, name,
                     getattr(result["model"], "variant", "?"), result.get("device"),
                     self._clock() - started)
            return Attempt(result["model"], result.get("device"))
        exc = result["error"]
        self._record_failure(exc, role)
        return Attempt(None, None, exc.reason, str(exc))

    def _record_failure(self, exc: ModelError, role: str) -> None:
        reason = exc.reason if exc.reason in FAILURE_REASONS else "unknown"
        self.metrics.load_failures.labels(reason=reason).inc()
        self.last_error = str(exc)
        log.error("Model load failed (%s model, reason %s): %s", role, reason, exc)

    def busy(self) -> str | None:
        """Why no load can start now, or None."""
        with self._lock:
            return self._busy()

    def _busy(self) -> str | None:
        if self._load_started is not None:
            return "a model load is already running"
        self._abandoned = [thread for thread in self._abandoned if thread.is_alive()]
        if self._abandoned:  # a second load beside it could double the memory in use
            return ("a load abandoned at its load_timeout is still running (it cannot be "
                    "stopped); restart the app to end it, or reload once it ends")
        return None

    def _begin(self) -> bool:
        with self._lock:
            why = self._busy()
            if why is not None:
                log.info("Not starting a model load: %s", why)
                return False
            self._load_started = self._clock()
            if self._model is None:
                self._status = Status(ModelState.LOADING)
        self._publish()
        return True

    def _finish(self, attempt: Attempt, role: str | None, checksum_ok: bool | None) -> Status:
        with self._lock:
            if attempt.model is None and self._model is not None:
                log.error("Reload failed (%s); keeping the %s model already serving",
                          attempt.reason, self._status.model_type)
                # A serving fallback's reason is why the primary is not serving: the latest
                # failed attempt's, not the first one's (playbooks classify from it).
                degraded = self._status.state is ModelState.DEGRADED
                reason = attempt.message if degraded else self._status.reason
                self._status = replace(self._status, reason=reason, checksum_ok=checksum_ok)
            else:
                self._model = attempt.model
                self._status = self._status_for(attempt, role, checksum_ok)
            self._publish()
            # Last: `loading` is read without the lock (/model/health), and whoever sees it
            # false must see the load's outcome already in the status and the metrics.
            self._load_started = None
        self._log_outcome()
        return self._status

    def _status_for(self, attempt: Attempt, role: str | None,
                    checksum_ok: bool | None) -> Status:
        if attempt.model is None:
            return Status(ModelState.FAILED, attempt.message, checksum_ok=checksum_ok)
        serving = Status(ModelState.READY, None, getattr(attempt.model, "variant", None),
                         model_type=role, checksum_ok=checksum_ok, device=attempt.device)
        if role == "fallback":
            return replace(serving, state=ModelState.DEGRADED, reason=attempt.message,
                           fallback_active=True, fallback_available=True)
        return replace(serving, fallback_available=self._fallback_present())

    def _fallback_present(self) -> bool:
        name = self.config.fallback_model
        if not name:
            return False
        try:
            from mobile_multimodal.model import resolve_model_path

            return resolve_model_path(name, self.config.model_dir).is_file()
        except (ModelError, OSError):
            return False

    def _log_outcome(self) -> None:
        status = self._status
        if status.state is ModelState.DEGRADED:
            log.warning("DEGRADED: serving the fallback model %s; the primary failed: %s",
                        self.config.fallback_model, status.reason)
        elif status.state is ModelState.FAILED:
            log.error("FAILED: no model loaded (%s); the server stays up and reports it on "
                      "/health", status.reason)

    def _publish(self) -> None:
        status = self._status
        self.metrics.loaded.set(1 if status.state is ModelState.READY else 0)
        self.metrics.fallback_active.set(1 if status.fallback_active else 0)
        if status.state is ModelState.READY and self._oom_restarts:
            if self._oom_marker is not None:
                clear_oom_restarts(self._oom_marker)
            self._oom_restarts = 0
        self.metrics.oom_restarts.set(self._oom_restarts)

    def _in_progress_seconds(self) -> float:
        started = self._load_started
        return 0.0 if started is None else max(0.0, self._clock() - started)

    # -- serving --------------------------------------------------------------------------
    @property
    def status(self) -> Status:
        return self._status

    @property
    def loading(self) -> bool:
        return self._load_started is not None

    def caption(self, image: bytes) -> tuple[str, str]:
        """Caption an image with whatever model serves; raises LookupError when none does."""
        model = self._model
        if model is None:
            raise LookupError(self._status.reason or "no model loaded yet")
        text = model.caption(image)
        with self._lock:
            self.inference_count += 1
            self.last_inference_time = time.time()
        return text, model.variant

    def model_path(self) -> Path:
        return self.config.primary_path
