"""`modelserver diagnose --json`, run for real on a model folder laid out like the image.

The command is what playbooks/model_load_failure.yml's `check` step runs in the container;
these tests run it as a separate interpreter (as docker exec does), with a clean
environment, and read its JSON report: the field names are the playbook's contract.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from mobile_multimodal import MobileMultiModalLLM
from mobile_multimodal.checkpoint import FORMAT_VERSION
from mobile_multimodal.diagnose import CURRENT_FORMAT
from mobile_multimodal.diagnose import main as diagnose_main

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
MANIFEST = json.loads((ROOT / "models" / "manifest.json").read_text())
NO_APP = "http://127.0.0.1:1"  # nothing listens: the app is down
RUN = "import sys; from mobile_multimodal.cli import main; main(sys.argv[1:])"
# What a broken image lacks: these imports fail (sys.modules[name] = None) before the
# command starts; it must answer anyway, and import nothing but the standard library.
BROKEN = ("torch", "PIL", "numpy", "yaml", "click", "flask", "gunicorn", "prometheus_client")
UNIMPORTABLE = """
import json, sys
before = set(sys.modules)  # the interpreter's own start-up (site and its .pth hooks)
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from mobile_multimodal.diagnose import diagnose
from pathlib import Path
report = diagnose(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5])
loaded = sorted({m.split(".")[0] for m, v in sys.modules.items()
                 if v is not None and m not in before})
print(json.dumps({"report": report, "loaded": loaded}))
"""


def layout_args(tmp: Path, app_url: str = NO_APP) -> list[str]:
    return ["--model-dir", str(tmp / "models"), "--backup-dir", str(tmp / "backup"),
            "--config", str(tmp / "model.yml"), "--format-version", "2", "--app-url", app_url]


def run(argv: list[str], env: dict[str, str] | None = None, code: str = RUN
        ) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([*(env or {}).pop("PYTHONPATH", "").split(os.pathsep), str(APP)])
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=120, env={"PATH": os.environ["PATH"], **(env or {}),
                                            "PYTHONPATH": path.strip(os.pathsep)})


def investigate(tmp: Path, env: dict[str, str] | None = None,
                app_url: str = NO_APP) -> dict[str, Any]:
    """`modelserver diagnose --json` on a copy of models/ laid out like the image."""
    proc = run(["diagnose", "--json", *layout_args(tmp, app_url)], dict(env or {}))
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@pytest.fixture
def image_like(tmp_path: Path) -> Path:
    for folder in ("models", "backup"):
        (tmp_path / folder).mkdir()
        for name in ["manifest.json"] + [m["file"] for m in MANIFEST["models"]]:
            (tmp_path / folder / name).write_bytes((ROOT / "models" / name).read_bytes())
    (tmp_path / "model.yml").write_text((ROOT / "config" / "model.yml").read_text())
    return tmp_path


def resave(path: Path, **changes: Any) -> None:
    """The checkpoint with other bytes than the manifest's, so the deep read runs."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    torch.save({**raw, **changes}, path)


# -- the report ------------------------------------------------------------------------------
def test_a_healthy_layout_finds_nothing(image_like: Path) -> None:
    report = investigate(image_like)
    assert report["findings"] == [] and report["config"]["ok"] is True
    assert report["app"] is None and "Connection refused" in report["app_error"]
    assert report["missing_modules"] == []
    assert report["primary"]["checksum_ok"] is True and report["backup"]["usable"] is True
    assert report["primary"]["path"].endswith("/models/best_model.pth")
    assert report["fallback"]["path"].endswith("/models/int2_quantized.pth")
    assert "format_version" not in report["primary"]  # published bytes: no torch.load needed
    assert report["disk"]["free"] > 0 and set(report["memory"]) == {"used", "limit"}


def test_it_reports_what_the_app_itself_says(image_like: Path) -> None:
    body = {"state": "DEGRADED", "reason": "FileNotFoundError: model file not found: x"}

    class App(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(body if self.path == "/model/health" else {}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        report = investigate(image_like, app_url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert report["app"] == body and "app_error" not in report


def test_without_json_it_prints_the_findings_one_a_line(image_like: Path) -> None:
    (image_like / "models" / "best_model.pth").unlink()
    proc = run(["diagnose", *layout_args(image_like)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (f"file_missing_or_corrupted: primary model {image_like}/models/"
                           "best_model.pth does not exist\n")


def test_the_format_it_expects_is_the_one_the_app_reads() -> None:
    assert CURRENT_FORMAT == FORMAT_VERSION


# -- scenario 1: missing or corrupted ---------------------------------------------------------
def test_it_finds_a_missing_primary_and_a_usable_backup(image_like: Path) -> None:
    (image_like / "models" / "best_model.pth").unlink()
    report = investigate(image_like)
    assert report["findings"] == [f"file_missing_or_corrupted: primary model "
                                  f"{image_like}/models/best_model.pth does not exist"]
    assert report["backup"]["usable"] is True


def test_it_finds_corruption_by_zip_crc_and_a_bad_backup(image_like: Path) -> None:
    for folder in ("models", "backup"):
        path = image_like / folder / "best_model.pth"
        data = bytearray(path.read_bytes())
        data[600000:600064] = bytes(64)
        path.write_bytes(bytes(data))
    report = investigate(image_like)
    assert report["primary"]["checksum_ok"] is False
    assert "fails its CRC" in report["primary"]["error"]
    assert report["findings"][0].startswith("file_missing_or_corrupted: primary model")
    assert report["backup"]["checksum_ok"] is False and report["backup"]["usable"] is False


def test_a_version_that_is_no_int_is_corrupted(image_like: Path) -> None:
    resave(image_like / "models" / "best_model.pth", version="2")
    report = investigate(image_like)
    assert report["primary"]["error"] == "'version' must be an int, got '2'"
    assert report["findings"][0].startswith("file_missing_or_corrupted: primary model")


class Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch pwned",))


def test_a_pickled_payload_is_refused_by_the_weights_only_read_and_runs_nothing(
        image_like: Path) -> None:
    path = image_like / "models" / "best_model.pth"
    torch.save({"version": 2, "payload": Payload()}, path)
    report = investigate(image_like)
    assert "carries pickled code, refused without running it" in report["primary"]["error"]
    assert report["findings"][0].startswith("file_missing_or_corrupted: primary model")
    assert not list(image_like.rglob("pwned")) and not Path("pwned").exists()


# -- scenario 5: an older format -----------------------------------------------------------------
def test_it_tells_an_old_format_with_torchs_weights_only_read(image_like: Path) -> None:
    path = image_like / "models" / "best_model.pth"
    model = MobileMultiModalLLM.from_pretrained(str(path))
    torch.save(model.network.state_dict(), path)  # format 0, as an older release wrote it
    report = investigate(image_like)
    assert report["primary"]["format_version"] == 0
    assert report["findings"] == [f"model_format: primary model {path} uses checkpoint format "
                                  "version 0, this release reads 2"]


@pytest.mark.parametrize("name", [m["file"] for m in MANIFEST["models"]])
def test_it_reads_every_shipped_variant_as_the_current_format(
        image_like: Path, name: str) -> None:
    resave(image_like / "models" / name, note="re-saved")
    report = investigate(image_like, {"MODEL_PATH": name})
    assert report["primary"]["checksum_ok"] is False
    assert report["primary"]["format_version"] == 2 and "error" not in report["primary"]


def test_it_follows_model_path_from_the_environment(image_like: Path) -> None:
    report = investigate(image_like, {"MODEL_PATH": "int8_quantized.pth"})
    assert report["primary"]["path"].endswith("/models/int8_quantized.pth")
    assert report["primary"]["checksum_ok"] is True and report["findings"] == []


# -- scenario 6: the app's own dependencies broken -----------------------------------------------
def test_it_answers_with_torch_pil_yaml_and_click_unimportable(image_like: Path) -> None:
    """Issue 18: the diagnosis runs on the standard library alone; where torch is missing
    the zip CRCs are still checked and the weights-only read is skipped, not crashed on."""
    resave(image_like / "models" / "best_model.pth", note="re-saved")
    proc = run([",".join(BROKEN), str(image_like / "models"), str(image_like / "backup"),
                str(image_like / "model.yml"), NO_APP], code=UNIMPORTABLE)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    report = out["report"]
    assert report["missing_modules"] == ["torch", "numpy", "PIL", "yaml", "flask", "gunicorn",
                                         "prometheus_client"]
    assert report["findings"][:2] == [
        "missing_dependency: module torch cannot be imported in this image",
        "missing_dependency: module numpy cannot be imported in this image"]
    primary = report["primary"]
    assert primary["checksum_ok"] is False and "error" not in primary
    assert primary["weights_only"] == "skipped: torch does not import here"
    assert report["config"]["ok"] is None and "yaml" in report["config"]["error"]
    assert report["backup"]["usable"] is True
    assert [m for m in out["loaded"] if m not in sys.stdlib_module_names] == [
        "mobile_multimodal"]


def test_the_console_entry_runs_diagnose_without_click(image_like: Path) -> None:
    code = ("import sys; sys.modules.update(click=None, torch=None, PIL=None); "
            "from mobile_multimodal.cli import main; main(sys.argv[1:])")
    proc = run(["diagnose", "--json", *layout_args(image_like)], code=code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["missing_modules"] == ["torch", "PIL"]


# -- scenario 7: configuration ------------------------------------------------------------------
@pytest.mark.parametrize(("config", "needle"), [
    ("load_timeout: soon\n", "load_timeout: expected a duration like 30s or 2m, got 'soon'"),
    ("device: gpu\n", "device: expected one of auto, cpu, cuda, got 'gpu'"),
    ("modle_path: x.pth\n", "unknown key 'modle_path'"),
    ("device: [cpu\n", "invalid YAML"),
])
def test_it_validates_model_yml_as_the_app_does(image_like: Path, config: str,
                                                needle: str) -> None:
    (image_like / "model.yml").write_text(config)
    report = investigate(image_like)
    assert report["config"]["ok"] is False and needle in report["config"]["error"]
    assert report["findings"][0].startswith(f"configuration: {image_like}/model.yml")
    assert report["primary"]["path"].endswith("/models/best_model.pth")  # defaults still


# -- scenario 3: CUDA ----------------------------------------------------------------------------
def test_it_finds_cuda_asked_for_without_a_gpu(image_like: Path) -> None:
    (image_like / "model.yml").write_text("device: cuda\n")
    assert investigate(image_like)["findings"] == [
        "cuda: the config asks for device cuda but this container sees no GPU (no /dev/nvidia*)"]
    # The runbook's fix, CUDA_VISIBLE_DEVICES="", is not a finding.
    assert investigate(image_like, {"CUDA_VISIBLE_DEVICES": ""})["findings"] == []


# -- scenario 4: permissions ---------------------------------------------------------------------
def investigate_as_nobody(tmp: Path) -> dict[str, Any]:
    """diagnose.main in a forked child that gave up root (root reads files whatever their
    mode). The interpreter is already loaded, so only the layout must be reachable."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe and its exit status
        status = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            sys.stdout = os.fdopen(write, "w")  # print() goes to the pipe, not pytest's capture
            status = diagnose_main(["--json", *layout_args(tmp)])
            sys.stdout.flush()
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as output:
        text = output.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    report: dict[str, Any] = json.loads(text)
    return report


def test_it_finds_an_unreadable_model() -> None:
    base = Path(tempfile.mkdtemp(prefix="investigate-"))  # reachable by nobody, unlike tmp_path
    try:
        base.chmod(0o755)
        for folder in ("models", "backup"):
            shutil.copytree(ROOT / "models", base / folder)
        (base / "model.yml").write_text((ROOT / "config" / "model.yml").read_text())
        for path in base.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (base / "models" / "best_model.pth").chmod(0)
        report = (investigate_as_nobody(base) if os.geteuid() == 0 else investigate(base))
        assert report["uid"] != 0
        assert report["findings"] == [
            f"permission_denied: primary model {base}/models/best_model.pth is not readable by "
            f"uid {report['uid']} (mode 0000, owner {os.getuid()}:{os.getgid()})"]
        assert report["backup"]["usable"] is True
    finally:
        shutil.rmtree(base)
