"""The serving app's manager states, endpoints and bad input, with a fake model loader."""

from __future__ import annotations

import base64
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mobile_multimodal.config import ServeConfig, load_config
from mobile_multimodal.errors import (
    InvalidImage,
    ModelConfigError,
    ModelDeviceError,
    ModelError,
    ModelFileCorrupted,
    ModelFileMissing,
    ModelFormatTooOld,
)
from mobile_multimodal.manager import ModelManager, ModelState, resolve_device
from mobile_multimodal.metrics import FAILURE_REASONS, ServingMetrics
from mobile_multimodal.server import build_manager, create_app

RUNBOOK_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
               "kgAAAABJRU5ErkJggg==")


class FakeModel:
    def __init__(self, variant: str) -> None:
        self.variant = variant

    def caption(self, image: Any) -> str:
        if not bytes(image).startswith(b"\x89PNG"):
            raise InvalidImage("InvalidImage: not a PNG or JPEG image")
        return "a red circle"


def loader_for(failures: dict[str, ModelError]) -> Any:
    def load(name: str, device: str, model_dir: Path) -> FakeModel:
        for key, error in failures.items():
            if key in name:
                raise error
        return FakeModel("fp32" if name.endswith(".pth") else "int2")
    return load


def make(failures: dict[str, ModelError] | None = None, **config: Any) -> ModelManager:
    metrics = ServingMetrics(CollectorRegistry())
    cfg = ServeConfig(model_dir=Path("/models"), device="cpu", **config)
    return ModelManager(cfg, metrics, loader=loader_for(failures or {}), env={})


def sample(manager: ModelManager, name: str, **labels: str) -> float | None:
    return manager.metrics.registry.get_sample_value(name, labels or None)


def test_healthy_primary_answers_the_runbook_json() -> None:
    manager = make()
    manager.load()
    client = create_app(manager).test_client()
    resp = client.get("/health")
    assert (resp.status_code, resp.get_json()) == (200, {"status": "healthy",
                                                         "model_loaded": True})
    assert sample(manager, "model_loaded") == 1.0
    assert sample(manager, "model_fallback_active") == 0.0
    assert client.get("/v2/health/ready").status_code == 200


def test_missing_primary_serves_fallback_as_degraded_and_counts_the_reason() -> None:
    manager = make({"best_model": ModelFileMissing("/models/best_model.pth")})
    status = manager.load()
    assert status.state is ModelState.DEGRADED and status.fallback_active
    body = create_app(manager).test_client().get("/health").get_json()
    assert body["status"] == "degraded" and body["model_loaded"] is False
    assert "FileNotFoundError" in body["reason"]
    assert sample(manager, "model_load_failures_total", reason="file_missing") == 1.0
    assert sample(manager, "model_fallback_active") == 1.0
    assert sample(manager, "model_loaded") == 0.0


def test_nothing_loads_answers_503_and_the_server_stays_up() -> None:
    corrupted = ModelFileCorrupted("/models/x", "truncated")
    manager = make({"best_model": corrupted, "int2": ModelFileMissing("int2")})
    assert manager.load().state is ModelState.FAILED
    client = create_app(manager).test_client()
    resp = client.get("/health")
    assert resp.status_code == 503
    assert resp.get_json()["model_loaded"] is False
    assert "The model file is corrupted" in resp.get_json()["reason"]
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/health/live").status_code == 200
    inference = client.post("/model/inference", json={"image": RUNBOOK_PNG})
    assert inference.status_code == 503


def test_every_failure_reason_exists_from_start_at_zero() -> None:
    manager = make()
    for reason in FAILURE_REASONS:
        assert sample(manager, "model_load_failures_total", reason=reason) == 0.0
    assert sample(manager, "model_load_in_progress_seconds") == 0.0


def test_failed_reload_keeps_the_model_already_serving() -> None:
    failures: dict[str, ModelError] = {}
    manager = ModelManager(ServeConfig(device="cpu", fallback_model=None),
                           ServingMetrics(CollectorRegistry()), loader=loader_for(failures),
                           env={})
    assert manager.load().state is ModelState.READY
    failures["best_model"] = ModelFileMissing("best_model.pth")
    assert manager.load().state is ModelState.READY


def gated(load_timeout: float) -> tuple[ModelManager, threading.Event]:
    """A manager (no fallback) whose load waits, at most 5 s, for the returned event."""
    release = threading.Event()

    def loader(name: str, device: str, model_dir: Path) -> FakeModel:
        release.wait(5)
        return FakeModel("fp32")

    config = ServeConfig(device="cpu", load_timeout=load_timeout, fallback_model=None)
    return ModelManager(config, ServingMetrics(CollectorRegistry()), loader=loader,
                        env={}), release


def test_hung_load_is_abandoned_at_its_timeout_and_shows_in_progress() -> None:
    manager, release = gated(load_timeout=0.3)
    thread = manager.start()
    time.sleep(0.15)
    assert (sample(manager, "model_load_in_progress_seconds") or 0.0) > 0.0
    thread.join(2)
    release.set()
    assert manager.status.state is ModelState.FAILED
    assert sample(manager, "model_load_failures_total", reason="load_timeout") == 1.0
    assert sample(manager, "model_load_in_progress_seconds") == 0.0


def test_no_load_starts_beside_one_abandoned_at_its_timeout() -> None:
    # A thread cannot be stopped: a reload beside the hung load would hold two models.
    manager, release = gated(load_timeout=0.2)
    manager.start().join(2)
    assert manager.status.state is ModelState.FAILED
    client = create_app(manager).test_client()
    refused = client.post("/model/reload")
    assert refused.status_code == 409
    assert "abandoned at its load_timeout is still running" in refused.get_json()["reason"]
    release.set()
    deadline = time.monotonic() + 5
    while manager.busy() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.post("/model/reload").status_code == 202


def test_the_first_load_is_in_progress_as_soon_as_start_returns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`make up` reads `loading` false as 'this is the outcome'; right after start() it
    must already say a load is running, however late the scheduler runs its thread."""

    class LateThread(threading.Thread):
        def run(self) -> None:
            time.sleep(0.3)
            super().run()

    monkeypatch.setattr("mobile_multimodal.manager.threading.Thread", LateThread)
    manager, release = gated(load_timeout=5)
    thread = manager.start()
    assert manager.loading and manager.status.state is ModelState.LOADING
    release.set()
    thread.join(5)
    assert not manager.loading and manager.status.state is ModelState.READY

    # A broken config is an outcome too, reached the same way.
    broken = ModelManager(ServeConfig(device="cpu"), ServingMetrics(CollectorRegistry()),
                          env={}, config_error=ModelConfigError("model.yml: device: bad"))
    thread = broken.start()
    assert broken.loading
    thread.join(5)
    assert not broken.loading and broken.status.state is ModelState.FAILED
    assert sample(broken, "model_load_failures_total", reason="config_invalid") == 1.0


def test_inference_on_the_runbook_png_returns_a_caption() -> None:
    manager = make()
    manager.load()
    client = create_app(manager).test_client()
    resp = client.post("/model/inference", json={"image": RUNBOOK_PNG, "task": "captioning"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["caption"] == "a red circle" and body["variant"] == "fp32"
    assert manager.inference_count == 1
    assert sample(manager, "model_inference_requests_total", task="captioning",
                  outcome="ok") == 1.0
    health = client.get("/model/health").get_json()
    assert health["inference_count"] == 1 and health["last_inference_time"] is not None
    assert health["state"] == "READY" and health["variant"] == "fp32"


@pytest.mark.parametrize(("body", "needle"), [
    ({"image": "%%% not base64 %%%"}, "not valid base64"),
    ({"image": base64.b64encode(b"plain text").decode()}, "not a PNG or JPEG"),
    ({"image": RUNBOOK_PNG, "task": "translation"}, "unknown task"),
    ({"task": "captioning"}, "missing field 'image'"),
    ([1, 2, 3], "JSON object"),
])
def test_bad_inference_input_is_a_400_with_an_error(body: Any, needle: str) -> None:
    manager = make()
    manager.load()
    resp = create_app(manager).test_client().post("/model/inference", json=body)
    assert resp.status_code == 400
    assert needle in resp.get_json()["error"]


def test_non_json_and_oversized_images_are_400() -> None:
    manager = make(max_image_bytes=64)
    manager.load()
    client = create_app(manager).test_client()
    assert client.post("/model/inference", data="nope",
                       content_type="text/plain").status_code == 400
    big = base64.b64encode(b"\x89PNG" + b"0" * 100).decode()
    resp = client.post("/model/inference", json={"image": big})
    assert resp.status_code == 400 and "limit" in resp.get_json()["error"]


def test_invalid_config_names_file_and_key_and_the_server_reports_it(tmp_path: Path) -> None:
    bad = tmp_path / "model.yml"
    bad.write_text("model_path: best_model.pth\ndevice: tpu\n")
    with pytest.raises(ModelConfigError, match=r"model.yml: device: expected one of"):
        load_config(bad, env={})
    manager = build_manager(bad, tmp_path)
    assert manager.load().state is ModelState.FAILED
    assert "device" in (manager.status.reason or "")
    assert sample(manager, "model_load_failures_total", reason="config_invalid") == 1.0


def test_a_config_that_is_not_utf8_is_a_config_error_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "model.yml"
    bad.write_bytes(b"model_path: best\xff.pth\n")
    with pytest.raises(ModelConfigError, match=r"model.yml is not UTF-8 text \(byte 16\)"):
        load_config(bad, env={})
    assert build_manager(bad, tmp_path).load().state is ModelState.FAILED


def test_config_layers_defaults_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "model.yml"
    path.write_text("model_path: int8_quantized.pth\nload_timeout: 2m\n")
    cfg = load_config(path, env={"MODEL_DEVICE": "cpu"})
    assert (cfg.model_path, cfg.load_timeout, cfg.device) == ("int8_quantized.pth", 120.0, "cpu")
    with pytest.raises(ModelConfigError, match="unknown key 'model_pth'"):
        path.write_text("model_pth: x\n")
        load_config(path, env={})


def test_cuda_requested_without_cuda_fails_naming_cuda_and_empty_visible_devices_forces_cpu(
) -> None:
    with pytest.raises(ModelDeviceError, match="CUDA"):
        resolve_device("cuda", {}, has_cuda=lambda: False)
    assert resolve_device("cuda", {"CUDA_VISIBLE_DEVICES": ""}, has_cuda=lambda: False) == "cpu"
    assert resolve_device("auto", {}, has_cuda=lambda: False) == "cpu"


# --- reloads, load errors, timing ------------------------------------------------------------
class Recorder:
    """A loader that records what it was asked to load and fails on demand."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.failures: dict[str, BaseException] = {}

    def __call__(self, name: str, device: str, model_dir: Path) -> FakeModel:
        self.calls.append(name)
        for key, error in self.failures.items():
            if key in name:
                raise error
        return FakeModel("fp32" if name.endswith(".pth") else "int2")


def recorded(**config: Any) -> tuple[ModelManager, Recorder]:
    loader = Recorder()
    cfg = ServeConfig(model_dir=Path("/models"), device="cpu", **config)
    manager = ModelManager(cfg, ServingMetrics(CollectorRegistry()), loader=loader, env={},
                           checksum=lambda path: True)
    return manager, loader


def test_failed_reload_never_swaps_a_serving_primary_for_the_fallback() -> None:
    manager, loader = recorded()
    assert manager.load().state is ModelState.READY
    loader.failures["best_model"] = ModelFileMissing("/models/best_model.pth")
    status = manager.load()
    assert (status.state, status.variant, status.model_type) == (ModelState.READY, "fp32",
                                                                "primary")
    assert loader.calls == ["/models/best_model.pth"] * 2  # the fallback was never tried
    assert sample(manager, "model_load_failures_total", reason="file_missing") == 1.0
    assert "FileNotFoundError" in (manager.last_error or "")
    assert sample(manager, "model_loaded") == 1.0


def test_degraded_recovers_on_reload_and_a_failed_reload_keeps_the_fallback() -> None:
    manager, loader = recorded()
    loader.failures["best_model"] = ModelFileCorrupted("/models/best_model.pth", "truncated")
    assert manager.load().state is ModelState.DEGRADED
    again = manager.load()  # primary still broken: keep the fallback already serving
    assert (again.state, again.variant, again.fallback_active) == (ModelState.DEGRADED, "int2",
                                                                  True)
    assert loader.calls.count("int2_quantized") == 1
    loader.failures.clear()
    fixed = manager.load()
    assert (fixed.state, fixed.variant, fixed.fallback_active) == (ModelState.READY, "fp32",
                                                                  False)
    assert sample(manager, "model_fallback_active") == 0.0
    assert sample(manager, "model_loaded") == 1.0


@pytest.mark.parametrize(("error", "reason"), [
    (ImportError("No module named 'PIL'", name="PIL"), "import_error"),
    (MemoryError(), "out_of_memory"),
    (RuntimeError("a loader bug"), "unknown"),
    (ModelDeviceError("cuda"), "cuda_unavailable"),
])
def test_any_loader_error_is_a_reason_and_the_server_stays_up(error: BaseException,
                                                             reason: str) -> None:
    manager, loader = recorded(fallback_model=None)
    loader.failures["best_model"] = error
    status = manager.load()
    assert status.state is ModelState.FAILED and status.reason
    assert sample(manager, "model_load_failures_total", reason=reason) == 1.0
    resp = create_app(manager).test_client().get("/health")
    assert resp.status_code == 503 and resp.get_json()["reason"] == status.reason


def test_import_error_message_is_the_runbook_pattern() -> None:
    manager, loader = recorded(fallback_model=None)
    loader.failures["best_model"] = ImportError("No module named 'PIL'", name="PIL")
    assert "ImportError: No module named 'PIL'" in (manager.load().reason or "")


def test_every_reason_a_load_can_raise_has_a_series() -> None:
    import mobile_multimodal.errors as errors

    not_load = {"store_error", "store_unavailable", "disk_full", "bad_image", "model_error"}
    raised = {getattr(errors, name).reason for name in errors.__all__} - not_load
    assert raised <= set(FAILURE_REASONS), raised - set(FAILURE_REASONS)
    assert "unknown" in FAILURE_REASONS


def test_load_duration_covers_primary_and_fallback_and_in_progress_returns_to_zero() -> None:
    now = [100.0]

    def slow(name: str, device: str, model_dir: Path) -> FakeModel:
        now[0] += 2.0
        if "best_model" in name:
            raise ModelFileMissing(name)
        return FakeModel("int2")

    manager = ModelManager(ServeConfig(device="cpu"), ServingMetrics(CollectorRegistry()),
                           loader=slow, env={}, clock=lambda: now[0], checksum=lambda p: None)
    manager.load()
    assert sample(manager, "model_load_duration_seconds") == 4.0
    assert sample(manager, "model_load_in_progress_seconds") == 0.0
    assert manager.last_load_seconds == 4.0


def test_reload_is_refused_while_a_load_runs_and_marks_loading_at_once() -> None:
    release = threading.Event()

    def gated(name: str, device: str, model_dir: Path) -> FakeModel:
        release.wait(5)
        return FakeModel("fp32")

    manager = ModelManager(ServeConfig(device="cpu", fallback_model=None),
                           ServingMetrics(CollectorRegistry()), loader=gated, env={},
                           checksum=lambda p: None)
    client = create_app(manager).test_client()
    first = client.post("/model/reload")
    assert first.status_code == 202 and manager.loading  # set before the thread runs
    assert client.post("/model/reload").status_code == 409
    release.set()
    deadline = time.monotonic() + 5
    while manager.loading and time.monotonic() < deadline:
        time.sleep(0.01)
    assert manager.status.state is ModelState.READY


def wait_loaded(manager: ModelManager) -> None:
    deadline = time.monotonic() + 5
    while manager.loading and time.monotonic() < deadline:
        time.sleep(0.01)


def test_reload_reads_the_config_file_again(tmp_path: Path) -> None:
    """Runbook scenario 5's "update configuration to use converted model", no restart."""
    path = tmp_path / "model.yml"
    path.write_text("# the shipped comments stay\nmodel_path: best_model.pth\ndevice: cpu\n")
    loader = Recorder()
    loader.failures["best_model.pth"] = ModelFormatTooOld("/models/best_model.pth", 0, 2)
    manager = ModelManager(load_config(path, env={}, model_dir=Path("/models")),
                           ServingMetrics(CollectorRegistry()), loader=loader, env={},
                           checksum=lambda p: None,
                           config_source=lambda: load_config(path, env={},
                                                             model_dir=Path("/models")))
    assert manager.load().state is ModelState.DEGRADED
    path.write_text("model_path: best_model_converted.pth\ndevice: cpu\n")
    client = create_app(manager).test_client()
    assert client.post("/model/reload").status_code == 202
    wait_loaded(manager)
    status = manager.status
    assert (status.state, status.model_type) == (ModelState.READY, "primary")
    assert loader.calls[-1] == "/models/best_model_converted.pth"
    # A config that no longer parses fails the reload; the model serving keeps serving.
    path.write_text("device: [cpu\n")
    client.post("/model/reload")
    deadline = time.monotonic() + 5
    while not sample(manager, "model_load_failures_total", reason="config_invalid"):
        assert time.monotonic() < deadline, "the failed reload was not counted"
        time.sleep(0.01)
    assert manager.status.state is ModelState.READY
    assert manager.config.primary_path == Path("/models/best_model_converted.pth")


def test_model_health_has_every_field_the_issue_names() -> None:
    manager, _ = recorded()
    manager.load()
    body = create_app(manager).test_client().get("/model/health").get_json()
    for key in ("model_loaded", "model_type", "memory_usage_mb", "last_inference_time",
                "inference_count", "state", "reason", "variant", "fallback_active",
                "fallback_available", "checksum_ok", "device", "loading", "last_load_seconds"):
        assert key in body, key
    assert body["checksum_ok"] is True and body["device"] == "cpu"
    assert body["memory_usage_mb"] > 0
    assert body["fallback_available"] is False  # /models/int2_quantized.pth is not there


def test_fallback_available_when_its_file_is_present(tmp_path: Path) -> None:
    (tmp_path / "int2_quantized.pth").write_bytes(b"PK\x03\x04")
    manager = ModelManager(ServeConfig(model_dir=tmp_path, device="cpu"),
                           ServingMetrics(CollectorRegistry()), loader=loader_for({}), env={},
                           checksum=lambda p: None)
    assert manager.load().fallback_available is True


def test_loading_state_answers_503_loading_and_not_ready() -> None:
    manager, _ = recorded()
    client = create_app(manager).test_client()
    resp = client.get("/health")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "loading", "model_loaded": False, "reason": None}
    assert client.get("/v2/health/ready").status_code == 503
    assert client.post("/model/inference", json={"image": RUNBOOK_PNG}).status_code == 503


def test_empty_cuda_visible_devices_forces_cpu_without_asking_torch() -> None:
    def boom() -> bool:
        raise AssertionError("must not probe CUDA")

    assert resolve_device("auto", {"CUDA_VISIBLE_DEVICES": ""}, has_cuda=boom) == "cpu"
    assert resolve_device("cpu", {}, has_cuda=boom) == "cpu"
    assert resolve_device("cuda", {}, has_cuda=lambda: True) == "cuda"


# --- more bad input, and errors as JSON -------------------------------------------------------
@pytest.mark.parametrize(("body", "needle"), [
    ({"image": ""}, "missing field 'image'"),
    ({"image": "   "}, "missing field 'image'"),
    ({"image": 42}, "missing field 'image'"),
    ({"image": RUNBOOK_PNG, "task": ["captioning"]}, "unknown task"),
    ({"image": "===="}, "not valid base64"),
    ({"image": "QQ"}, "not valid base64"),  # missing padding
    ("just a string", "JSON object"),
    (None, "JSON object"),
])
def test_more_bad_inference_input_is_400(body: Any, needle: str) -> None:
    manager, _ = recorded()
    manager.load()
    resp = create_app(manager).test_client().post("/model/inference", json=body)
    assert resp.status_code == 400 and needle in resp.get_json()["error"]


def test_base64_with_line_breaks_or_a_data_url_prefix_is_accepted() -> None:
    manager, _ = recorded()
    manager.load()
    client = create_app(manager).test_client()
    wrapped = "\n".join(RUNBOOK_PNG[i:i + 76] for i in range(0, len(RUNBOOK_PNG), 76))
    for image in (wrapped, "data:image/png;base64," + RUNBOOK_PNG):
        resp = client.post("/model/inference", json={"image": image, "task": "captioning"})
        assert resp.status_code == 200, resp.get_json()


def test_oversized_body_is_a_400_not_a_413() -> None:
    manager, _ = recorded(max_image_bytes=1024)
    manager.load()
    resp = create_app(manager).test_client().post(
        "/model/inference", data=b"{" + b" " * 10_000 + b"}", content_type="application/json")
    assert resp.status_code == 400 and "too large" in resp.get_json()["error"]


def test_unknown_paths_methods_and_crashes_answer_json() -> None:
    class Crashing(FakeModel):
        def caption(self, image: Any) -> str:
            raise RuntimeError("boom")

    manager = ModelManager(ServeConfig(device="cpu"), ServingMetrics(CollectorRegistry()),
                           loader=lambda *a: Crashing("fp32"), env={}, checksum=lambda p: None)
    manager.load()
    client = create_app(manager).test_client()
    assert client.get("/nope").get_json() == {"error": "404 Not Found"}
    assert client.get("/model/inference").status_code == 405
    resp = client.post("/model/inference", json={"image": RUNBOOK_PNG})
    assert resp.status_code == 500 and "RuntimeError" in resp.get_json()["error"]


# --- debug faults -----------------------------------------------------------------------------
def test_debug_routes_are_off_unless_model_debug_faults_is_1(
        monkeypatch: pytest.MonkeyPatch) -> None:
    manager, _ = recorded()
    monkeypatch.setenv("MODEL_DEBUG_FAULTS", "0")
    assert create_app(manager).test_client().post("/debug/grow",
                                                  json={"mb": 1}).status_code == 404


def test_debug_grow_holds_resident_memory_and_release_drops_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DEBUG_FAULTS", "1")
    manager, _ = recorded()
    client = create_app(manager).test_client()
    before = sample(manager, "model_memory_usage_bytes") or 0.0
    assert client.post("/debug/grow", json={"mb": 64}).get_json() == {"held_mb": 64}
    assert (sample(manager, "model_memory_usage_bytes") or 0.0) - before >= 60 * 2**20
    assert client.post("/debug/grow", json={"mb": "lots"}).status_code == 400
    assert client.post("/debug/grow", json={"mb": 10**6}).status_code == 400
    assert client.post("/debug/release").get_json() == {"held_mb": 0}


def test_debug_background_growth_stops_at_its_limit() -> None:
    from mobile_multimodal.debug import Ballast

    ballast = Ballast()
    thread = ballast.grow_steadily(mb_per_s=4, limit_mb=4)
    thread.join(5)
    assert not thread.is_alive() and ballast.mb == 4


# --- OOM: a killed worker ends the container --------------------------------------------------
def test_oom_counter_reads_cgroup_v1_and_v2_files(tmp_path: Path) -> None:
    from mobile_multimodal.oom import oom_kills

    v1 = tmp_path / "oom_control"
    v1.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    v2 = tmp_path / "memory.events"
    v2.write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n")
    assert oom_kills((tmp_path / "absent", v1)) == 3
    assert oom_kills((v2,)) == 2
    assert oom_kills((tmp_path / "absent",)) is None


class FakeArbiter:
    def __init__(self, listening: bool) -> None:
        self.LISTENERS = [object()] if listening else []


class FakeWorker:
    pid = 7


def test_oom_watch_exits_137_only_for_an_oom_kill_while_serving() -> None:
    from mobile_multimodal.oom import OomWatch

    counts = [0]
    exits: list[int] = []
    watch = OomWatch(counter=lambda: counts[0], exit=exits.append)
    watch(FakeArbiter(True), FakeWorker())  # a worker died, no OOM: gunicorn respawns it
    assert exits == []
    counts[0] = 1
    watch(FakeArbiter(False), FakeWorker())  # shutting down: not ours to judge
    assert exits == []
    watch(FakeArbiter(True), FakeWorker())
    assert exits == [137]
    blind = OomWatch(counter=lambda: None, exit=exits.append)
    blind(FakeArbiter(True), FakeWorker())
    assert exits == [137]


def test_oom_exit_is_counted_across_restarts_and_cleared_once_the_primary_serves(
        tmp_path: Path) -> None:
    """The next start says its last load was OOM-killed (model_oom_restarts), so
    ModelLoadFailure fires in seconds instead of waiting out a crash loop."""
    from mobile_multimodal.oom import OomWatch

    marker = tmp_path / "oom-restarts"
    counts, exits = [0], []
    watch = OomWatch(counter=lambda: counts[0], exit=exits.append, marker=marker)
    counts[0] = 1
    watch(FakeArbiter(True), FakeWorker())
    watch(FakeArbiter(True), FakeWorker())
    assert exits == [137, 137] and marker.read_text().strip() == "2"

    failing = ModelManager(ServeConfig(device="cpu", fallback_model=None),
                           ServingMetrics(CollectorRegistry()), env={}, oom_marker=marker,
                           loader=loader_for({"best_model.pth": ModelError("boom", "x")}),
                           checksum=lambda p: None)
    assert sample(failing, "model_oom_restarts") == 2  # from the first scrape on
    failing.load()
    assert sample(failing, "model_oom_restarts") == 2 and marker.exists()

    healthy = ModelManager(ServeConfig(device="cpu"), ServingMetrics(CollectorRegistry()),
                           env={}, oom_marker=marker, loader=loader_for({}),
                           checksum=lambda p: None)
    assert healthy.load().state is ModelState.READY
    assert sample(healthy, "model_oom_restarts") == 0 and not marker.exists()


# --- review fixes: what the runbook's reader sees ---------------------------------------------
SHIPPED = Path(__file__).resolve().parents[2] / "models"


def real_manager(model_dir: Path) -> ModelManager:
    """The real loader (validation, torch.load weights-only) on model_dir, no fallback."""
    config = ServeConfig(model_dir=model_dir, device="cpu", fallback_model=None)
    return ModelManager(config, ServingMetrics(CollectorRegistry()), env={},
                        checksum=lambda p: None)


def cpu_alloc_failure() -> BaseException:
    return RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't "
                        "allocate memory: you tried to allocate 1073741824 bytes. Error code "
                        "12 (Cannot allocate memory)")


def cuda_alloc_failure() -> BaseException:
    import torch

    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


@pytest.mark.parametrize("where", ["torch.load", "load_state_dict"])
@pytest.mark.parametrize("failure", [cpu_alloc_failure, cuda_alloc_failure])
def test_scenario_2_torch_allocation_failure_is_out_of_memory_not_corruption(
        where: str, failure: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mobile_multimodal.checkpoint as checkpoint

    shutil.copy(SHIPPED / "best_model.pth", tmp_path / "best_model.pth")

    def allocation_fails(*args: Any, **kwargs: Any) -> Any:
        raise failure()

    if where == "torch.load":
        monkeypatch.setattr(checkpoint.torch, "load", allocation_fails)
    else:
        monkeypatch.setattr(checkpoint.CaptionNet, "load_state_dict", allocation_fails)
    manager = real_manager(tmp_path)
    assert manager.load().state is ModelState.FAILED
    body = create_app(manager).test_client().get("/health").get_json()
    assert body["reason"].startswith("MemoryError: out of memory while loading")
    assert "corrupted" not in body["reason"] and "backup" not in body["reason"]
    assert sample(manager, "model_load_failures_total", reason="out_of_memory") == 1.0
    assert sample(manager, "model_load_failures_total", reason="corrupted") == 0.0


def test_scenario_2_loader_raising_cuda_out_of_memory_is_out_of_memory() -> None:
    manager, loader = recorded(fallback_model=None)
    loader.failures["best_model"] = RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
    manager.load()
    assert sample(manager, "model_load_failures_total", reason="out_of_memory") == 1.0
    assert sample(manager, "model_load_failures_total", reason="unknown") == 0.0


def test_a_failed_reload_while_degraded_reports_the_latest_failure() -> None:
    manager, loader = recorded()
    loader.failures["best_model"] = ModelFileMissing("/models/best_model.pth")
    assert manager.load().state is ModelState.DEGRADED
    loader.failures["best_model"] = ModelFormatTooOld("/models/best_model.pth", 0, 2)
    assert manager.load().state is ModelState.DEGRADED
    client = create_app(manager).test_client()
    health, model_health = client.get("/health"), client.get("/model/health").get_json()
    assert health.status_code == 200 and health.get_json()["status"] == "degraded"
    for reason in (health.get_json()["reason"], model_health["reason"]):
        assert reason.startswith("ModelFormatTooOld") and "FileNotFoundError" not in reason
    assert model_health["reason"] == model_health["last_error"]
    assert model_health["fallback_active"] is True and model_health["variant"] == "int2"


def test_scenario_3_cuda_configured_without_cuda_degrades_to_the_fallback_on_cpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    asked: list[tuple[str, str]] = []

    def loader(name: str, device: str, model_dir: Path) -> FakeModel:
        asked.append((name, device))
        return FakeModel("fp32" if name.endswith(".pth") else "int2")

    manager = ModelManager(ServeConfig(model_dir=Path("/models"), device="cuda"),
                           ServingMetrics(CollectorRegistry()), loader=loader, env={},
                           checksum=lambda p: True)
    assert manager.load().state is ModelState.DEGRADED
    assert asked == [("int2_quantized", "cpu")]  # the primary never reached the loader
    client = create_app(manager).test_client()
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "degraded"
    assert "CUDA" in health.get_json()["reason"]
    assert client.get("/model/health").get_json()["device"] == "cpu"
    assert sample(manager, "model_load_failures_total", reason="cuda_unavailable") == 1.0
    assert sample(manager, "model_fallback_active") == 1.0
    resp = client.post("/model/inference", json={"image": RUNBOOK_PNG})
    assert resp.status_code == 200 and resp.get_json()["variant"] == "int2"


@pytest.mark.parametrize(("text", "where"), [
    ("device: cpu\nmodel_path: 2024-13-45\n", r"model.yml:2: model_path: invalid value"),
    ("device: cpu\n1: x\nfoo: y\n", r"model.yml:2: unknown key 1"),
])
def test_scenario_7_unparseable_config_values_are_config_errors_at_start_and_on_reload(
        text: str, where: str, tmp_path: Path) -> None:
    path = tmp_path / "model.yml"
    path.write_text(text)
    with pytest.raises(ModelConfigError, match=where):
        load_config(path, env={})
    started = build_manager(path, tmp_path)
    assert started.load().state is ModelState.FAILED
    assert sample(started, "model_load_failures_total", reason="config_invalid") == 1.0
    # A serving app whose config file goes bad: the reload is refused, the model keeps serving.
    path.write_text("device: cpu\n")
    manager = ModelManager(load_config(path, env={}, model_dir=Path("/models")),
                           ServingMetrics(CollectorRegistry()), loader=Recorder(), env={},
                           checksum=lambda p: True,
                           config_source=lambda: load_config(path, env={},
                                                             model_dir=Path("/models")))
    assert manager.load().state is ModelState.READY
    path.write_text(text)
    client = create_app(manager).test_client()
    assert client.post("/model/reload").status_code == 202
    wait_loaded(manager)
    assert sample(manager, "model_load_failures_total", reason="config_invalid") == 1.0
    assert client.get("/health").status_code == 200
    assert "model.yml" in (client.get("/model/health").get_json()["last_error"] or "")


@pytest.mark.parametrize(("text", "needle"), [
    ("max_image_bytes: true\n", "max_image_bytes: expected a positive integer, got True"),
    ("model_dir: null\n", "model_dir: expected a directory path"),
    ("model_dir: [a, b]\n", "model_dir: expected a directory path"),
    ("load_timeout: 0\n", "load_timeout: expected a duration above zero"),
    ("load_timeout: -5s\n", "load_timeout: expected a duration"),
])
def test_scenario_7_wrong_types_in_the_config_are_refused_naming_the_key(
        text: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "model.yml"
    path.write_text(text)
    with pytest.raises(ModelConfigError) as caught:
        load_config(path, env={})
    assert str(path) in str(caught.value) and needle in str(caught.value)
    manager = build_manager(path, tmp_path)
    assert manager.load().state is ModelState.FAILED
    resp = create_app(manager).test_client().get("/health")
    assert resp.status_code == 503 and needle in resp.get_json()["reason"]


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 50_000])
def test_deeply_nested_json_is_a_400_not_a_500(body: str) -> None:
    manager, _ = recorded()
    manager.load()
    resp = create_app(manager).test_client().post("/model/inference", data=body,
                                                   content_type="application/json")
    assert resp.status_code == 400 and "nested too deeply" in resp.get_json()["error"]
    assert sample(manager, "model_inference_requests_total", task="captioning",
                  outcome="bad_request") == 1.0


class _RunsAShell:
    """A pickle payload calling os.system (torch 2.13: "...whose module posix is blocked")."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_scenario_1_os_system_payload_is_refused_as_pickled_code_without_torch_advice(
        tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "pwned"
    torch.save({"version": 2, "state_dict": _RunsAShell(marker)}, tmp_path / "best_model.pth")
    manager = real_manager(tmp_path)
    assert manager.load().state is ModelState.FAILED
    reason = create_app(manager).test_client().get("/health").get_json()["reason"]
    assert "carries pickled code, refused without running it" in reason
    assert "posix" in reason  # the global it tried to call
    assert "weights_only" not in reason and "Re-running" not in reason
    assert not marker.exists()
    assert sample(manager, "model_load_failures_total", reason="corrupted") == 1.0
