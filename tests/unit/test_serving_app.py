"""The serving app's manager states, endpoints and bad input, with a fake model loader."""

from __future__ import annotations

import base64
import threading
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


def test_hung_load_is_abandoned_at_its_timeout_and_shows_in_progress() -> None:
    release = threading.Event()

    def hang(name: str, device: str, model_dir: Path) -> FakeModel:
        release.wait(5)
        return FakeModel("fp32")

    manager = ModelManager(ServeConfig(device="cpu", load_timeout=0.3, fallback_model=None),
                           ServingMetrics(CollectorRegistry()), loader=hang, env={})
    thread = manager.start()
    import time
    time.sleep(0.15)
    assert sample(manager, "model_load_in_progress_seconds") > 0.0
    thread.join(2)
    release.set()
    assert manager.status.state is ModelState.FAILED
    assert sample(manager, "model_load_failures_total", reason="load_timeout") == 1.0
    assert sample(manager, "model_load_in_progress_seconds") == 0.0


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
