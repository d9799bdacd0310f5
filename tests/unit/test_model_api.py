"""MobileMultiModalLLM: loading by name or path, captioning, the Docker health probe."""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

import mobile_multimodal
import mobile_multimodal.model
from mobile_multimodal.data import VOCABULARY, generate
from mobile_multimodal.errors import (
    InvalidImage,
    ModelConfigError,
    ModelDeviceError,
    ModelFileMissing,
)
from mobile_multimodal.model import MobileMultiModalLLM, resolve_model_path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models"
RUNBOOK_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAA"
               "BJRU5ErkJggg==")


@pytest.fixture(scope="module")
def fp32() -> MobileMultiModalLLM:
    return MobileMultiModalLLM.from_pretrained("best_model", model_dir=SHIPPED)


@pytest.mark.parametrize(("name", "variant"), [
    ("best_model", "fp32"), ("mobile-mm-llm-int2", "int2"), ("int2_quantized", "int2"),
    ("int8_quantized", "int8"), ("int8_quantized.pth", "int8"),
])
def test_every_published_name_loads_its_variant(name: str, variant: str) -> None:
    model = MobileMultiModalLLM.from_pretrained(name, model_dir=SHIPPED)
    assert model.variant == variant and Path(model.path).parent == SHIPPED


def test_model_dir_comes_from_argument_then_env_then_app_models(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODEL_DIR", raising=False)
    assert resolve_model_path("best_model") == Path("/app/models/best_model.pth")
    monkeypatch.setenv("MODEL_DIR", str(SHIPPED))
    assert MobileMultiModalLLM.from_pretrained("mobile-mm-llm-int2").variant == "int2"
    with pytest.raises(ModelFileMissing, match=str(tmp_path)):
        MobileMultiModalLLM.from_pretrained("best_model", model_dir=tmp_path)


def test_a_path_loads_directly_and_unknown_names_are_config_errors() -> None:
    by_path = MobileMultiModalLLM.from_pretrained(str(SHIPPED / "int2_quantized.pth"))
    assert by_path.variant == "int2"
    with pytest.raises(ModelConfigError, match="mobile-mm-llm-int2"):
        MobileMultiModalLLM.from_pretrained("gpt-5", model_dir=SHIPPED)


def test_a_broken_manifest_does_not_hide_published_files(tmp_path: Path) -> None:
    (tmp_path / "int2_quantized.pth").write_bytes((SHIPPED / "int2_quantized.pth").read_bytes())
    (tmp_path / "manifest.json").write_text("{not json")
    assert MobileMultiModalLLM.from_pretrained("mobile-mm-llm-int2",
                                               model_dir=tmp_path).variant == "int2"


def _encoded(image: Image.Image, fmt: str, size: int) -> bytes:
    buffer = io.BytesIO()
    image.resize((size, size)).save(buffer, fmt)
    return buffer.getvalue()


def test_captions_png_jpeg_and_pil_images_of_any_size(fp32: MobileMultiModalLLM) -> None:
    images, captions, _ = generate(20, seed=2024)
    for fmt, size in (("PNG", 32), ("JPEG", 96), ("PNG", 200)):
        inputs = [_encoded(Image.fromarray(a), fmt, size) for a in images]
        right = sum(fp32.caption(b) == c for b, c in zip(inputs, captions, strict=True))
        assert right >= 16, (fmt, size, right)
    pil = [Image.fromarray(a) for a in images]
    assert [fp32.caption(p) for p in pil] == fp32.caption_batch(pil)


def test_runbook_one_pixel_png_gets_a_caption(fp32: MobileMultiModalLLM) -> None:
    caption = fp32.caption(base64.b64decode(RUNBOOK_PNG))
    assert caption and set(caption.split()) <= set(VOCABULARY)


@pytest.mark.parametrize("data", [b"", b"not an image", b"GIF89a" + b"\0" * 20])
def test_undecodable_input_is_invalid_image(fp32: MobileMultiModalLLM, data: bytes) -> None:
    with pytest.raises(InvalidImage) as caught:
        fp32.caption(data)
    assert caught.value.reason == "bad_image"


def test_other_formats_and_huge_images_are_refused(fp32: MobileMultiModalLLM,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    with pytest.raises(InvalidImage, match="GIF"):
        fp32.caption(gif.getvalue())
    monkeypatch.setattr(mobile_multimodal.model, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InvalidImage, match="limit"):
        fp32.caption(_encoded(Image.new("RGB", (8, 8)), "PNG", 32))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda_is_a_device_error() -> None:
    with pytest.raises(ModelDeviceError) as caught:
        MobileMultiModalLLM.from_pretrained("best_model", model_dir=SHIPPED, device="cuda")
    assert "CUDA" in str(caught.value) and caught.value.reason == "cuda_unavailable"


def test_info_describes_the_loaded_model(fp32: MobileMultiModalLLM) -> None:
    info = fp32.info()
    assert info["variant"] == "fp32" and info["format_version"] == 2
    assert info["architecture"] == "MobileCaptionNet" and info["parameter_bytes"] > 500_000


class _Health(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b"{}")

    def do_GET(self) -> None:
        status, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_health_check_passes_when_healthy(health_server: http.server.ThreadingHTTPServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    health_server.answer = (200, json.dumps(  # type: ignore[attr-defined]
        {"status": "healthy", "model_loaded": True}).encode())
    monkeypatch.setenv("PORT", str(health_server.server_address[1]))
    assert MobileMultiModalLLM.health_check() is None


@pytest.mark.parametrize("answer", [
    (200, b'{"status": "degraded", "model_loaded": false}'),
    (503, b'{"status": "unhealthy", "model_loaded": false}'),
    (200, b"<html>"),
])
def test_health_check_exits_non_zero_otherwise(health_server: http.server.ThreadingHTTPServer,
                                               monkeypatch: pytest.MonkeyPatch,
                                               answer: tuple[int, bytes]) -> None:
    health_server.answer = answer  # type: ignore[attr-defined]
    monkeypatch.setenv("PORT", str(health_server.server_address[1]))
    with pytest.raises(SystemExit) as caught:
        MobileMultiModalLLM.health_check()
    assert caught.value.code not in (0, None) and "unhealthy" in str(caught.value.code)


def test_health_check_exits_non_zero_when_nothing_listens(
        health_server: http.server.ThreadingHTTPServer) -> None:
    port = health_server.server_address[1]
    health_server.shutdown()
    health_server.server_close()
    with pytest.raises(SystemExit, match="unreachable"):
        MobileMultiModalLLM.health_check(f"http://127.0.0.1:{port}/health", timeout=2)


def test_package_attribute_is_lazy_and_explicit() -> None:
    assert mobile_multimodal.MobileMultiModalLLM is MobileMultiModalLLM
    with pytest.raises(AttributeError):
        _ = mobile_multimodal.NoSuchThing


RUNBOOK_SNIPPETS = """
import sys
import mobile_multimodal
assert 'torch' not in sys.modules, 'importing the package must not import torch'
from mobile_multimodal import MobileMultiModalLLM
try:
    model = MobileMultiModalLLM.from_pretrained('mobile-mm-llm-int2')
    print('Model loaded successfully')
    assert 'torch._dynamo' not in sys.modules, 'a load must stay light (no dynamo import)'
except Exception as e:
    print('Error:', str(e))
import torch
checkpoint = torch.load(sys.argv[1], map_location='cpu')
print('Model format version:', checkpoint.get('version', 'unknown'))
print('PyTorch version used:', checkpoint.get('pytorch_version', 'unknown'))
print('Model architecture:', checkpoint.get('architecture', 'unknown'))
"""


def test_runbook_snippets_print_real_values() -> None:
    """Scenario 'Test Model Loading Manually' and scenario 5, verbatim but for paths.
    TORCH_FORCE_WEIGHTS_ONLY_LOAD makes the snippet's bare torch.load weights-only for sure."""
    env = {**os.environ, "MODEL_DIR": str(SHIPPED), "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"}
    done = subprocess.run([sys.executable, "-c", RUNBOOK_SNIPPETS,
                           str(SHIPPED / "best_model.pth")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "Model loaded successfully" in done.stdout
    assert "Model format version: 2" in done.stdout
    assert f"PyTorch version used: {torch.__version__}" in done.stdout
    assert "Model architecture: MobileCaptionNet" in done.stdout
