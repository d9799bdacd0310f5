"""The runbook's in-container commands, run as README.md's table says, on a real container.

Each command is the README's "on this stack" form (``docker exec app-prod ...``, with the
runbook's Python snippets verbatim), run by bash on the host with ``app-prod`` replaced by
this test's container name. Read-only commands come first; the repairs (download, restore,
chown/chmod, convert) last, and the service must still be healthy and reload after them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from docker.models.containers import Container

from tests.harness.docker_engine import ROOT, Resources, host_port

pytestmark = pytest.mark.docker

RUNBOOK_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
               "kgAAAABJRU5ErkJggg==")

# The runbook's Python snippets, verbatim (Investigation 2, Investigation 3, Scenario 1,
# Scenario 3, Scenario 5, Scenario 7).
INTEGRITY = """
import torch
try:
    model = torch.load('/app/models/best_model.pth', map_location='cpu')
    print('Model loaded successfully')
    print('Model keys:', list(model.keys()))
except Exception as e:
    print('Model load error:', str(e))
"""
FROM_PRETRAINED = """
from mobile_multimodal import MobileMultiModalLLM
try:
    model = MobileMultiModalLLM.from_pretrained('mobile-mm-llm-int2')
    print('Model loaded successfully')
except Exception as e:
    print('Error:', str(e))
    import traceback
    traceback.print_exc()
"""
VERIFY = """
import torch
model = torch.load('/app/models/best_model.pth', map_location='cpu')
print('Model validation successful')
"""
CUDA = """
import torch
print('CUDA available:', torch.cuda.is_available())
print('CUDA version:', torch.version.cuda)
print('PyTorch version:', torch.__version__)
"""
FORMAT = """
import torch
checkpoint = torch.load('/app/models/best_model.pth', map_location='cpu')
print('Model format version:', checkpoint.get('version', 'unknown'))
print('PyTorch version used:', checkpoint.get('pytorch_version', 'unknown'))
print('Model architecture:', checkpoint.get('architecture', 'unknown'))
"""
YAML = """
import yaml
with open('config/model.yml') as f:
    config = yaml.safe_load(f)
print('Model config:', config)
"""


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


SHIPPED = ROOT / "models"

READ_ONLY = [
    # (id, README command, what its output must contain)
    ("diagnose", "docker exec app-prod modelserver diagnose",
     ["no findings: the files, config, dependencies and resources look right"]),
    ("diagnose-json", "docker exec app-prod modelserver diagnose --json",
     ['"findings": []', '"checksum_ok": true', '"missing_modules": []']),
    ("logs-grep", 'docker logs --since=10m app-prod 2>&1 | grep -i "model\\|load\\|error"',
     ["Model loaded: primary model /app/models/best_model.pth"]),
    ("ls-models", "docker exec app-prod ls -la /app/models/",
     ["appuser appuser", "best_model.pth", "int2_quantized.pth", "manifest.json"]),
    ("ls-pth", "docker exec app-prod sh -c 'ls -la /app/models/*.pth'",
     ["/app/models/best_model.pth", "/app/models/int8_quantized.pth"]),
    ("stat-best-model", "docker exec app-prod stat /app/models/best_model.pth",
     ["File: /app/models/best_model.pth", "(0644/-rw-r--r--)", "( 1000/ appuser)"]),
    ("df-models", "docker exec app-prod df -h /app/models/", ["Filesystem", "Avail"]),
    ("md5sum", "docker exec app-prod sh -c 'md5sum /app/models/*.pth'",
     [f"{md5(SHIPPED / 'best_model.pth')}  /app/models/best_model.pth",
      f"{md5(SHIPPED / 'int2_quantized.pth')}  /app/models/int2_quantized.pth"]),
    ("torch-load-keys", f'docker exec app-prod python -c "{INTEGRITY}"',
     ["Model loaded successfully", "Model keys: ['version', 'pytorch_version'"]),
    ("from-pretrained-int2", f'docker exec app-prod python -c "{FROM_PRETRAINED}"',
     ["Model loaded successfully"]),
    ("verify-integrity", f'docker exec app-prod python -c "{VERIFY}"',
     ["Model validation successful"]),
    ("cuda-check", f'docker exec app-prod python -c "{CUDA}"',
     ["CUDA available: False", "PyTorch version: 2.13.0+cpu"]),
    ("format-version", f'docker exec app-prod python -c "{FORMAT}"',
     ["Model format version: 2", "PyTorch version used: 2.13.0", "Model architecture: "
      "MobileCaptionNet"]),
    ("pip-list", 'docker exec app-prod pip list | grep -E "(torch|tensorflow|onnx|coreml)"',
     ["torch", "2.13.0+cpu"]),
    ("sys-path", "docker exec app-prod python -c \"import sys; print('\\n'.join(sys.path))\"",
     ["/opt/venv/lib/python3.11/site-packages"]),
    ("env", 'docker exec app-prod env | grep -E "(MODEL|TORCH|PATH)"',
     ["MODEL_DIR=/app/models", "MODEL_CONFIG=/app/config/model.yml",
      "MODEL_STORE=/opt/model-store", "PATH=/opt/venv/bin:"]),
    ("cat-config", "docker exec app-prod cat /app/config/model.yml",
     ["model_path: best_model.pth", "fallback_model: int2_quantized", "device: auto"]),
    ("yaml-config", f'docker exec app-prod python -c "{YAML}"',
     ["Model config: {'model_path': 'best_model.pth', 'fallback_model': 'int2_quantized'"]),
    ("free", "free -h", ["Mem:"]),
    ("docker-stats", "docker stats --no-stream app-prod", ["MEM USAGE / LIMIT", "app-prod"]),
    ("curl-health", "curl -f http://127.0.0.1:8080/health",
     ['"model_loaded":true', '"status":"healthy"']),
    ("curl-model-health", "curl -f http://127.0.0.1:8080/model/health",
     ['"state":"READY"', '"checksum_ok":true']),
    ("metrics-model-load", "curl -s http://127.0.0.1:8080/metrics | grep model_load",
     ["model_load_failures_total{reason=\"file_missing\"} 0.0", "model_load_duration_seconds",
      "model_load_in_progress_seconds 0.0"]),
    ("metrics-model-inference", "curl -s http://127.0.0.1:8080/metrics | grep model_inference",
     ["model_inference_duration_seconds_bucket"]),
    ("curl-inference", "curl -X POST http://127.0.0.1:8080/model/inference "
     "-H \"Content-Type: application/json\""
     f" -d '{{\"image\": \"{RUNBOOK_PNG}\", \"task\": \"captioning\"}}'", ['"caption":']),
]

REPAIRS = [
    ("docker exec app-prod python /app/scripts/download_models.py --model int2_quantized "
     "--force", ["int2_quantized: installed /app/models/int2_quantized.pth"]),
    ("docker exec app-prod cp /backup/models/best_model.pth /app/models/", []),
    ("docker exec -u root app-prod chown -R appuser:appuser /app/models/", []),
    ("docker exec -u root app-prod sh -c 'chmod 644 /app/models/*.pth'", []),
    ("docker exec app-prod python /app/scripts/convert_model.py --input "
     "/app/models/best_model.pth --output /app/models/best_model_converted.pth "
     "--target-version current",
     ["/app/models/best_model.pth (format 2) -> /app/models/best_model_converted.pth"]),
]


@pytest.fixture(scope="module")
def app(images: dict[str, str], docker_client: docker.DockerClient) -> Iterator[Container]:
    resources = Resources(docker_client)
    try:
        container = resources.run(images["modelserver"], None, ports={"8080/tcp": None})
        wait_ready(host_port(container))
        yield container
    finally:
        resources.cleanup()


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def wait_ready(port: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = http().get(f"http://127.0.0.1:{port}/model/health", timeout=5).json()
            if body["state"] == "READY" and not body["loading"]:
                return dict(body)
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"not READY on port {port} after {timeout}s")


def run(command: str, container: Container) -> str:
    """The README's command with app-prod → this container and 8080 → its host port."""
    port = host_port(container)
    concrete = (command.replace("app-prod", container.name)
                .replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
    done = subprocess.run(["bash", "-o", "pipefail", "-c", concrete], capture_output=True,
                          text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{concrete[:200]!r} exited {done.returncode}:\n{output}"
    return output.replace(container.name, "app-prod")


@pytest.mark.parametrize(("command", "expected"), [(c, e) for _, c, e in READ_ONLY],
                         ids=[name for name, _, _ in READ_ONLY])
def test_read_only_runbook_command(app: Container, command: str, expected: list[str]) -> None:
    output = run(command, app)
    for needle in expected:
        assert needle in output, f"{needle!r} not in:\n{output}"


def test_health_from_inside_the_container_is_the_runbook_json(app: Container) -> None:
    """`curl -f localhost:8080/health` inside the container: curl is not in the image
    (minbase), so the stdlib does the GET; the HEALTHCHECK probe uses the same path."""
    probe = ("import json, urllib.request; print(json.dumps(json.load("
             "urllib.request.urlopen('http://localhost:8080/health'))))")
    output = run(f'docker exec app-prod python -c "{probe}"', app)
    assert json.loads(output) == {"status": "healthy", "model_loaded": True}
    run("docker exec app-prod python -c \"from mobile_multimodal import MobileMultiModalLLM; "
        "MobileMultiModalLLM.health_check()\"", app)


def test_repairs_then_the_service_is_still_healthy_and_reloads(app: Container) -> None:
    for command, expected in REPAIRS:
        output = run(command, app)
        for needle in expected:
            assert needle in output, f"{needle!r} not in:\n{output}"
    port = host_port(app)
    session = http()
    reload = session.post(f"http://127.0.0.1:{port}/model/reload", timeout=5)
    assert reload.status_code == 202
    body = wait_ready(port)
    assert body["checksum_ok"] is True and body["variant"] == "fp32"
    assert session.get(f"http://127.0.0.1:{port}/health", timeout=5).json() == {
        "status": "healthy", "model_loaded": True}
