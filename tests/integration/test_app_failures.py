"""Every runbook failure, injected from outside a real mobile-multimodal container.

Faults come only from outside the app, as an operator or an incident would cause them:
files changed in the models volume before the container starts (a helper container runs
`rm`, `truncate`, `dd`, `chmod`, `chown` as root), a memory limit, a CPU quota, a config
file bind-mounted over /app/config/model.yml, an environment variable, a derived image
without a dependency. The one switch inside the app is MODEL_DEBUG_FAULTS=1 for memory
growth. Each test checks the evidence the runbook looks for: the log line, the
model_load_failures_total{reason} series, /health and /model/health, or Docker's own
state (OOMKilled, exit 137) when the process cannot report anything itself.

Every scenario's container starts at once (module fixture `fleet`, one thread each), so the
file runs in about the time of the slowest scenario, not the sum.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
from docker.models.containers import Container
from prometheus_client.parser import text_string_to_metric_families

from mobile_multimodal.metrics import FAILURE_REASONS
from tests.harness.docker_engine import LABEL, SESSION_ID, Resources, host_port

pytestmark = pytest.mark.docker

RUNBOOK_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
               "kgAAAABJRU5ErkJggg==")
MODELS = "/app/models"
SETTLE_S = 150.0
"""Longest we wait for a container to finish loading (they all start at once on few CPUs,
beside image builds)."""
LOAD_BOUND_S = 60.0
"""What a healthy load may report as its duration, however busy the machine."""


# --- plumbing ----------------------------------------------------------------------------
@dataclass
class App:
    """A running app container and its published port."""

    container: Container
    port: int
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.trust_env = False  # loopback: never through a proxy

    def call(self, method: str, path: str, timeout: float = 5, **kwargs: Any
             ) -> requests.Response:
        return self.session.request(method, f"http://127.0.0.1:{self.port}{path}",
                                    timeout=timeout, **kwargs)

    def get(self, path: str) -> tuple[int, Any]:
        resp = self.call("GET", path)
        return resp.status_code, resp.json()

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = self.call("GET", "/metrics").text
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def logs(self) -> str:
        return str(self.container.logs().decode(errors="replace"))

    def settled(self, timeout: float = SETTLE_S) -> dict[str, Any]:
        """/model/health once the load has finished (READY, DEGRADED or FAILED)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                _, last = self.get("/model/health")
                if last["state"] != "LOADING" and not last["loading"]:
                    return dict(last)
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"not settled after {timeout}s: {last}\n{self.logs()[-3000:]}")


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def exec_ok(container: Container, cmd: list[str], user: str = "appuser") -> str:
    result = container.exec_run(cmd, user=user)
    output = str(result.output.decode(errors="replace"))
    assert result.exit_code == 0, f"{cmd} exited {result.exit_code}: {output}"
    return output


@dataclass
class Fleet:
    """What every scenario shares: the engine, the image, a scratch folder."""

    resources: Resources
    image: str
    tmp: Path
    volumes: list[Any] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def models_volume(self, script: str) -> str:
        """A models volume filled from the image, then changed by `script` (run as root)."""
        volume = self.resources.volume()
        self.volumes.append(volume)
        helper = self.resources.run(self.image, ["sh", "-ec", script], user="root",
                                    volumes={volume.name: {"bind": MODELS, "mode": "rw"}})
        status = helper.wait(timeout=120)["StatusCode"]
        assert status == 0, f"fault script failed ({status}): {helper.logs().decode()}"
        return str(volume.name)

    def config_file(self, text: str) -> dict[str, dict[str, str]]:
        """A bind mount of `text` over /app/config/model.yml."""
        path = self.tmp / f"model-{uuid.uuid4().hex[:6]}.yml"
        path.write_text(text)
        path.chmod(0o644)
        return {str(path): {"bind": "/app/config/model.yml", "mode": "ro"}}

    def start(self, *, image: str | None = None, models: str | None = None,
              volumes: dict[str, dict[str, str]] | None = None, **kwargs: Any) -> App:
        mounts = dict(volumes or {})
        if models is not None:
            mounts[models] = {"bind": MODELS, "mode": "rw"}
        container = self.resources.run(image or self.image, None, ports={"8080/tcp": None},
                                       volumes=mounts, **kwargs)
        return App(container, host_port(container))


def image_healthcheck(client: docker.DockerClient, image: str, interval_s: float
                      ) -> dict[str, Any]:
    """The image's own HEALTHCHECK command, probed every `interval_s` instead of 60 s."""
    test = client.images.get(image).attrs["Config"]["Healthcheck"]["Test"]
    step = int(interval_s * 1e9)
    # start_period 0 would mean "the image's" (120 s); 1 ms is the engine's smallest.
    return {"test": test, "interval": step, "timeout": 10 * 10**9, "retries": 1,
            "start_period": 10**6}


def docker_health(container: Container, wanted: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    status = "?"
    while time.monotonic() < deadline:
        container.reload()
        status = container.attrs["State"].get("Health", {}).get("Status", "?")
        if status == wanted:
            break
        time.sleep(0.3)
    return status


# --- scenarios: each returns the evidence its test checks -------------------------------
def failure_evidence(app: App) -> dict[str, Any]:
    model_health = app.settled()
    health = app.get("/health")
    return {"model_health": model_health, "health": health, "metrics": app.metrics(),
            "logs": app.logs(), "ready": app.call("GET", "/v2/health/ready").status_code,
            "live": app.call("GET", "/v2/health/live").status_code}


def bad_inputs(app: App) -> dict[str, tuple[int, Any]]:
    big = "A" * (6 * 2**20)  # over max_image_bytes once decoded, and over the body limit
    cases: dict[str, dict[str, Any]] = {
        "not_base64": {"json": {"image": "%%% not base64 %%%", "task": "captioning"}},
        "not_an_image": {"json": {"image": "aGVsbG8gd29ybGQ=", "task": "captioning"}},
        "too_large": {"json": {"image": big, "task": "captioning"}},
        "unknown_task": {"json": {"image": RUNBOOK_PNG, "task": "translation"}},
        "missing_field": {"json": {"task": "captioning"}},
        "non_json": {"data": "image=abc", "headers": {"Content-Type": "text/plain"}},
    }
    out = {}
    for name, kwargs in cases.items():
        resp = app.call("POST", "/model/inference", timeout=15, **kwargs)
        out[name] = (resp.status_code, resp.json())
    return out


def healthy(fleet: Fleet) -> dict[str, Any]:
    hc = image_healthcheck(fleet.resources.client, fleet.image, 1)
    app = fleet.start(healthcheck=hc)
    model_health = app.settled()
    probe = ("import json, urllib.request; print(json.dumps(json.load(urllib.request.urlopen("
             "'http://localhost:8080/health'))))")
    inside = exec_ok(app.container, ["python", "-c", probe])
    inference = app.call("POST", "/model/inference", timeout=15,
                         json={"image": RUNBOOK_PNG, "task": "captioning"})
    evidence = {"model_health": model_health, "health": app.get("/health"), "inside": inside,
                "inference": (inference.status_code, inference.json()),
                "metrics": app.metrics(), "bad": bad_inputs(app),
                "docker_health": docker_health(app.container, "healthy"),
                "debug_grow": app.call("POST", "/debug/grow", json={"mb": 1}).status_code,
                "model_health_after": app.get("/model/health")[1]}
    started = time.monotonic()
    app.container.stop(timeout=10)  # SIGTERM, then SIGKILL after 10 s
    app.container.reload()
    evidence.update(stop_seconds=time.monotonic() - started,
                    exit_code=app.container.attrs["State"]["ExitCode"], final_logs=app.logs())
    return evidence


def reloaded(app: App) -> tuple[dict[str, Any], tuple[int, Any]]:
    """POST /model/reload, then /model/health once it settles, and /health."""
    assert app.call("POST", "/model/reload").status_code == 202
    return app.settled(), app.get("/health")


def missing_primary(fleet: Fleet) -> dict[str, Any]:
    app = fleet.start(models=fleet.models_volume(f"rm {MODELS}/best_model.pth"))
    evidence = failure_evidence(app)
    inference = app.call("POST", "/model/inference", timeout=15,
                         json={"image": RUNBOOK_PNG, "task": "captioning"})
    evidence["inference"] = (inference.status_code, inference.json())
    # The runbook's restore from backup.
    exec_ok(app.container, ["cp", "/backup/models/best_model.pth", f"{MODELS}/"])
    evidence["after_fix"] = reloaded(app)
    return evidence


def truncated_primary(fleet: Fleet) -> dict[str, Any]:
    app = fleet.start(models=fleet.models_volume(f"truncate -s 200000 {MODELS}/best_model.pth"))
    evidence = failure_evidence(app)
    # The runbook's download from the image's clean store (MODEL_STORE=/opt/model-store).
    evidence["download"] = exec_ok(app.container, [
        "python", "/app/scripts/download_models.py", "--force"])
    evidence["after_fix"] = reloaded(app)
    return evidence


def corrupted_primary(fleet: Fleet) -> dict[str, Any]:
    # 64 bytes of zeros in the middle of the weights: same size, same zip layout.
    script = (f"dd if=/dev/zero of={MODELS}/best_model.pth bs=1 seek=600000 count=64 "
              "conv=notrunc status=none")
    return failure_evidence(fleet.start(models=fleet.models_volume(script)))


def no_model_at_all(fleet: Fleet) -> dict[str, Any]:
    hc = image_healthcheck(fleet.resources.client, fleet.image, 1)
    app = fleet.start(healthcheck=hc, models=fleet.models_volume(
        f"rm {MODELS}/best_model.pth {MODELS}/int2_quantized.pth"))
    evidence = failure_evidence(app)
    evidence["docker_health"] = docker_health(app.container, "unhealthy")
    return evidence


def out_of_memory(fleet: Fleet) -> dict[str, Any]:
    app = fleet.start(mem_limit="100m", memswap_limit="100m")
    status = app.container.wait(timeout=SETTLE_S)["StatusCode"]
    app.container.reload()
    state = app.container.attrs["State"]
    return {"status": status, "state": state, "logs": app.logs()}


CUDA_CONFIG = "model_path: best_model.pth\nfallback_model: int2_quantized\ndevice: cuda\n"


def cuda_without_gpu(fleet: Fleet) -> dict[str, Any]:
    return failure_evidence(fleet.start(volumes=fleet.config_file(CUDA_CONFIG)))


def cuda_fixed_by_environment(fleet: Fleet) -> dict[str, Any]:
    # The runbook's fix, applied by recreating the container: same config, plus
    # CUDA_VISIBLE_DEVICES="".
    app = fleet.start(volumes=fleet.config_file(CUDA_CONFIG),
                      environment={"CUDA_VISIBLE_DEVICES": ""})
    return {"model_health": app.settled(), "health": app.get("/health"), "logs": app.logs()}


def permission_denied(fleet: Fleet) -> dict[str, Any]:
    script = (f"chmod 000 {MODELS}/best_model.pth; chown root:root {MODELS}/int2_quantized.pth;"
              f" chmod 600 {MODELS}/int2_quantized.pth")
    app = fleet.start(models=fleet.models_volume(script))
    evidence = failure_evidence(app)
    # The runbook's fix, verbatim, then a restart.
    exec_ok(app.container, ["chown", "-R", "appuser:appuser", f"{MODELS}/"], user="root")
    exec_ok(app.container, ["sh", "-c", f"chmod 644 {MODELS}/*.pth"], user="root")
    app.container.restart(timeout=10)
    fixed = App(app.container, host_port(app.container))
    evidence["after_fix"] = (fixed.settled(), fixed.get("/health"))
    return evidence


OLD_FORMAT = (  # a format-0 checkpoint: what `torch.save(model.state_dict())` writes
    f"python -c \"import torch; from mobile_multimodal import MobileMultiModalLLM as M; "
    f"m = M.from_pretrained('{MODELS}/best_model.pth'); "
    f"torch.save(m.network.state_dict(), '{MODELS}/best_model.pth')\"; "
    f"chown appuser:appuser {MODELS}/best_model.pth")


def old_format(fleet: Fleet) -> dict[str, Any]:
    app = fleet.start(models=fleet.models_volume(OLD_FORMAT))
    evidence = failure_evidence(app)
    evidence["convert"] = exec_ok(app.container, [
        "python", "/app/scripts/convert_model.py", "--input", f"{MODELS}/best_model.pth",
        "--output", f"{MODELS}/best_model_converted.pth", "--target-version", "current"])
    return evidence


BROKEN_DOCKERFILE = """FROM {image}
USER root
RUN pip uninstall -y pillow
USER appuser
LABEL {label}={session}
"""


def image_without_pillow(fleet: Fleet) -> dict[str, Any]:
    tag = f"mobile-multimodal:test-no-pillow-{SESSION_ID}"
    dockerfile = BROKEN_DOCKERFILE.format(image=fleet.image, label=LABEL, session=SESSION_ID)
    fleet.images.append(tag)
    fleet.resources.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag,
                                        rm=True, forcerm=True)
    hc = image_healthcheck(fleet.resources.client, tag, 1)
    app = fleet.start(image=tag, healthcheck=hc)
    evidence = failure_evidence(app)
    evidence["docker_health"] = docker_health(app.container, "unhealthy")
    return evidence


def invalid_config(fleet: Fleet) -> dict[str, Any]:
    config = "model_path: best_model.pth\nfallback_model: int2_quantized\nload_timeout: soon\n"
    return failure_evidence(fleet.start(volumes=fleet.config_file(config)))


def slow_load(fleet: Fleet) -> dict[str, Any]:
    # A tenth of a CPU: the load (mostly importing torch) takes tens of seconds.
    app = fleet.start(cpu_period=100_000, cpu_quota=10_000)
    seen: list[tuple[float, Any]] = []
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        try:
            in_progress = metric(app.metrics(), "model_load_in_progress_seconds") or 0.0
            seen.append((in_progress, app.get("/health")))
            if in_progress >= 3:
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    app.container.update(cpu_quota=200_000)  # the fix: give it CPU back (docker update)
    model_health = app.settled()
    return {"seen": seen, "model_health": model_health, "metrics": app.metrics()}


def memory_growth(fleet: Fleet) -> dict[str, Any]:
    app = fleet.start(environment={"MODEL_DEBUG_FAULTS": "1"}, mem_limit="1g",
                      memswap_limit="1g")
    app.settled()
    before = metric(app.metrics(), "model_memory_usage_bytes")
    grow = app.call("POST", "/debug/grow", json={"mb": 300}, timeout=15)
    after = metric(app.metrics(), "model_memory_usage_bytes")
    return {"before": before, "after": after, "grow": (grow.status_code, grow.json()),
            "logs": app.logs()}


SCENARIOS: dict[str, Callable[[Fleet], dict[str, Any]]] = {
    "broken_image": image_without_pillow,  # first: it also builds an image
    "slow": slow_load,
    "healthy": healthy,
    "missing": missing_primary,
    "truncated": truncated_primary,
    "corrupted": corrupted_primary,
    "nothing": no_model_at_all,
    "oom": out_of_memory,
    "cuda": cuda_without_gpu,
    "cuda_fixed": cuda_fixed_by_environment,
    "permission": permission_denied,
    "old_format": old_format,
    "config": invalid_config,
    "memory": memory_growth,
}


@pytest.fixture(scope="module")
def fleet(images: dict[str, str], docker_client: docker.DockerClient,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Any]]]:
    resources = Resources(docker_client)
    shared = Fleet(resources, images["modelserver"], tmp_path_factory.mktemp("app-failures"))
    pool = ThreadPoolExecutor(max_workers=len(SCENARIOS), thread_name_prefix="scenario")
    try:
        yield {name: pool.submit(run, shared) for name, run in SCENARIOS.items()}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        resources.cleanup()
        for volume in shared.volumes:
            volume.remove(force=True)
        for tag in shared.images:
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(tag, force=True)


def evidence(fleet: dict[str, Future[Any]], name: str) -> dict[str, Any]:
    return dict(fleet[name].result(timeout=4 * SETTLE_S))


def failures(result: dict[str, Any]) -> dict[str, float]:
    return {reason: metric(result["metrics"], "model_load_failures_total", reason=reason) or 0.0
            for reason in FAILURE_REASONS}


def only(counts: dict[str, float], **expected: float) -> bool:
    return all(counts[r] == expected.get(r, 0.0) for r in FAILURE_REASONS)


# --- the healthy image --------------------------------------------------------------------
def test_healthy_container_answers_the_runbook_json_inside_and_out(fleet: Any) -> None:
    result = evidence(fleet, "healthy")
    runbook = {"status": "healthy", "model_loaded": True}
    assert json.loads(result["inside"]) == runbook  # urllib inside the container
    assert result["health"] == (200, runbook)
    mh = result["model_health"]
    assert (mh["state"], mh["variant"], mh["model_type"]) == ("READY", "fp32", "primary")
    assert mh["checksum_ok"] is True and mh["fallback_available"] is True
    assert mh["fallback_active"] is False and mh["reason"] is None
    assert result["docker_health"] == "healthy"  # the image's HEALTHCHECK command


def test_healthy_container_captions_the_runbook_png_and_counts_it(fleet: Any) -> None:
    result = evidence(fleet, "healthy")
    status, body = result["inference"]
    assert status == 200 and body["caption"] and body["variant"] == "fp32"
    assert body["latency_ms"] > 0
    assert result["model_health_after"]["inference_count"] == 1
    samples = result["metrics"]
    assert metric(samples, "model_inference_requests_total", task="captioning",
                  outcome="ok") == 1.0
    assert metric(samples, "model_inference_duration_seconds_count") == 1.0
    assert metric(samples, "model_loaded") == 1.0
    assert metric(samples, "model_fallback_active") == 0.0
    assert metric(samples, "model_load_in_progress_seconds") == 0.0
    assert 0 < (metric(samples, "model_load_duration_seconds") or 0) < LOAD_BOUND_S
    assert (metric(samples, "model_memory_usage_bytes") or 0) > 50e6
    assert only(failures(result))  # every reason's series exists, at 0


def test_bad_input_is_400_with_an_error_through_gunicorn(fleet: Any) -> None:
    result = evidence(fleet, "healthy")
    for name, (status, body) in result["bad"].items():
        assert status == 400 and isinstance(body.get("error"), str), (name, status, body)
    assert "limit" in result["bad"]["too_large"][1]["error"]


def test_debug_faults_are_off_by_default(fleet: Any) -> None:
    assert evidence(fleet, "healthy")["debug_grow"] == 404


def test_sigterm_shuts_down_cleanly(fleet: Any) -> None:
    result = evidence(fleet, "healthy")
    assert result["exit_code"] == 0 and result["stop_seconds"] < 9
    assert "Handling signal: term" in result["final_logs"]
    assert "Shutting down: Master" in result["final_logs"]


# --- scenario 1: model file missing, truncated or corrupted --------------------------------
def test_scenario_1_missing_file_shows_file_not_found(fleet: Any) -> None:
    result = evidence(fleet, "missing")
    assert "FileNotFoundError: model file not found: /app/models/best_model.pth" in result["logs"]
    mh = result["model_health"]
    assert (mh["state"], mh["variant"], mh["fallback_active"]) == ("DEGRADED", "int2", True)
    assert mh["model_loaded"] is False and "FileNotFoundError" in mh["reason"]
    assert mh["checksum_ok"] is None
    status, body = result["health"]
    assert status == 200 and body["status"] == "degraded" and body["model_loaded"] is False
    assert only(failures(result), file_missing=1)
    assert metric(result["metrics"], "model_fallback_active") == 1.0
    assert metric(result["metrics"], "model_loaded") == 0.0
    assert result["ready"] == 200  # the fallback serves
    assert result["inference"][0] == 200 and result["inference"][1]["variant"] == "int2"
    model_health, health = result["after_fix"]  # cp from /backup/models, then reload
    assert health == (200, {"status": "healthy", "model_loaded": True})
    assert model_health["checksum_ok"] is True and model_health["fallback_active"] is False


def test_scenario_1_truncated_file_shows_corrupted(fleet: Any) -> None:
    result = evidence(fleet, "truncated")
    assert "ValueError: The model file is corrupted: /app/models/best_model.pth" in result["logs"]
    mh = result["model_health"]
    assert mh["state"] == "DEGRADED" and "The model file is corrupted" in mh["reason"]
    assert mh["checksum_ok"] is False
    assert only(failures(result), corrupted=1)
    assert "best_model: installed /app/models/best_model.pth" in result["download"]
    assert "best_model.pth.bak.unverified" in result["download"]  # the bad copy, set aside
    model_health, health = result["after_fix"]
    assert health == (200, {"status": "healthy", "model_loaded": True})
    assert model_health["checksum_ok"] is True


def test_scenario_1_corrupted_bytes_show_corrupted(fleet: Any) -> None:
    result = evidence(fleet, "corrupted")
    assert "ValueError: The model file is corrupted: /app/models/best_model.pth" in result["logs"]
    mh = result["model_health"]
    assert mh["state"] == "DEGRADED" and mh["checksum_ok"] is False
    counts = failures(result)
    assert counts["corrupted"] + counts["checksum_mismatch"] == 1, counts


def test_scenario_1_no_primary_and_no_fallback_is_failed_503(fleet: Any) -> None:
    result = evidence(fleet, "nothing")
    mh = result["model_health"]
    assert (mh["state"], mh["fallback_active"], mh["fallback_available"]) == (
        "FAILED", False, False)
    status, body = result["health"]
    assert status == 503 and body["model_loaded"] is False and body["status"] == "failed"
    assert "FileNotFoundError" in body["reason"]
    assert result["ready"] == 503 and result["live"] == 200
    assert only(failures(result), file_missing=2)
    assert metric(result["metrics"], "model_loaded") == 0.0
    assert metric(result["metrics"], "model_fallback_active") == 0.0
    assert result["docker_health"] == "unhealthy"


# --- scenario 2: out of memory while loading -------------------------------------------------
def test_scenario_2_memory_limit_too_small_is_oomkilled_137(fleet: Any) -> None:
    result = evidence(fleet, "oom")
    assert result["status"] == 137
    assert result["state"]["OOMKilled"] is True and result["state"]["ExitCode"] == 137
    assert "Loading primary model" in result["logs"]
    assert "Perhaps out of memory?" in result["logs"]


# --- scenario 3: device cuda without CUDA ----------------------------------------------------
def test_scenario_3_cuda_without_gpu_names_cuda_and_env_fix_recovers(fleet: Any) -> None:
    result = evidence(fleet, "cuda")
    assert "RuntimeError: CUDA requested (device='cuda')" in result["logs"]
    mh = result["model_health"]
    # Graceful degradation: the fallback is loaded on cpu, so the app keeps serving while
    # the reason names CUDA (the runbook's fix still applies: CUDA_VISIBLE_DEVICES="").
    assert mh["state"] == "DEGRADED" and "CUDA" in mh["reason"]
    assert mh["fallback_active"] is True and mh["device"] == "cpu"
    status, body = result["health"]
    assert status == 200 and body["status"] == "degraded" and "CUDA" in body["reason"]
    assert only(failures(result), cuda_unavailable=1)
    fixed = evidence(fleet, "cuda_fixed")
    assert fixed["health"] == (200, {"status": "healthy", "model_loaded": True})
    assert fixed["model_health"]["device"] == "cpu"


# --- scenario 4: permission denied ------------------------------------------------------------
def test_scenario_4_permission_denied_and_the_runbook_fix(fleet: Any) -> None:
    result = evidence(fleet, "permission")
    assert ("PermissionError: permission denied on model file /app/models/best_model.pth"
            in result["logs"])
    assert "/app/models/int2_quantized.pth" in result["logs"]  # chown root + 600
    mh = result["model_health"]
    assert mh["state"] == "FAILED" and "PermissionError" in mh["reason"]
    assert result["health"][0] == 503
    assert only(failures(result), permission_denied=2)
    model_health, health = result["after_fix"]
    assert health == (200, {"status": "healthy", "model_loaded": True})
    assert model_health["checksum_ok"] is True


# --- scenario 5: older checkpoint format ----------------------------------------------------
def test_scenario_5_old_format_names_convert_model(fleet: Any) -> None:
    result = evidence(fleet, "old_format")
    assert "scripts/convert_model.py" in result["logs"]
    assert "uses checkpoint format version 0" in result["logs"]
    mh = result["model_health"]
    assert mh["state"] == "DEGRADED" and "convert_model.py" in mh["reason"]
    assert only(failures(result), old_format=1)
    assert "(format 0) -> /app/models/best_model_converted.pth (format 2)" in result["convert"]


# --- scenario 6: an image that lacks a dependency --------------------------------------------
def test_scenario_6_image_without_pillow_is_import_error(fleet: Any) -> None:
    result = evidence(fleet, "broken_image")
    assert "ImportError: No module named 'PIL'" in result["logs"]
    mh = result["model_health"]
    assert mh["state"] == "FAILED" and "No module named 'PIL'" in mh["reason"]
    assert result["health"][0] == 503 and result["live"] == 200
    assert only(failures(result), import_error=2)
    assert result["docker_health"] == "unhealthy"
    # The fix is the previous good image: the same settings on it are healthy.
    assert evidence(fleet, "healthy")["health"][0] == 200


# --- scenario 7: invalid config/model.yml ----------------------------------------------------
def test_scenario_7_invalid_config_names_file_and_key(fleet: Any) -> None:
    result = evidence(fleet, "config")
    needle = ("/app/config/model.yml: load_timeout: expected a duration like 30s or 2m, "
              "got 'soon'")
    assert needle in result["logs"]
    mh = result["model_health"]
    assert mh["state"] == "FAILED" and needle in mh["reason"]
    assert result["health"][0] == 503
    assert only(failures(result), config_invalid=1)


# --- ModelLoadTime and ModelMemoryUsage -------------------------------------------------------
def test_slow_load_shows_in_progress_then_duration(fleet: Any) -> None:
    result = evidence(fleet, "slow")
    longest = max(value for value, _ in result["seen"])
    assert longest >= 3, result["seen"]
    loading = [health for value, health in result["seen"] if value > 0]
    assert loading and loading[-1] == (503, {"status": "loading", "model_loaded": False,
                                             "reason": None})
    assert result["model_health"]["state"] == "READY"
    duration = metric(result["metrics"], "model_load_duration_seconds") or 0.0
    assert duration >= longest
    assert metric(result["metrics"], "model_load_in_progress_seconds") == 0.0


def test_memory_growth_shows_in_memory_usage_bytes(fleet: Any) -> None:
    result = evidence(fleet, "memory")
    assert result["grow"] == (200, {"held_mb": 300})
    assert result["after"] - result["before"] >= 290 * 2**20
    assert "MODEL_DEBUG_FAULTS=1" in result["logs"]
