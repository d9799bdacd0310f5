"""`modelserver use-model NAME`, run for real: the runbook's scenario 5 config change that
playbooks/model_load_failure.yml's `use_converted` step runs in the container, against a
stand-in for the app's /model/reload and /model/health."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUN = ("import sys; sys.modules.update(click=None, torch=None, PIL=None); "
       "from mobile_multimodal.cli import main; main(sys.argv[1:])")  # standard library only


class ReloadSink(http.server.BaseHTTPRequestHandler):
    """The app's /model/reload and /model/health: loading for two polls, then `serves`."""

    posts: ClassVar[list[str]] = []
    serves: ClassVar[str] = "/app/models/best_model_converted.pth"
    polls: ClassVar[int] = 0

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        ReloadSink.posts.append(self.path)
        ReloadSink.polls = 0
        self._answer(202, {"reloading": True, "state": "LOADING"})

    def do_GET(self) -> None:
        ReloadSink.polls += 1
        if ReloadSink.polls <= 2:  # as the app answers while the fallback keeps serving
            self._answer(200, {"state": "DEGRADED", "loading": True,
                               "model_path": "/app/models/best_model_converted.pth"})
        else:
            self._answer(200, {"state": "READY", "loading": False,
                               "model_path": ReloadSink.serves})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def app_url() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), ReloadSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ReloadSink.posts.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        ReloadSink.serves = "/app/models/best_model_converted.pth"
        server.shutdown()


def use_model(config: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", RUN, "use-model", "best_model_converted.pth",
            "--config", str(config), "--app-url", url, "--wait", "10"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "app"),
                               **env})


def test_use_model_changes_model_path_keeps_the_rest_and_waits_for_the_reload(
        tmp_path: Path, app_url: str) -> None:
    shipped = (ROOT / "config" / "model.yml").read_text()
    config = tmp_path / "model.yml"
    config.write_text(shipped)
    done = use_model(config, app_url)
    assert done.returncode == 0, done.stderr
    assert "POST /model/reload: 202" in done.stdout and ReloadSink.posts == ["/model/reload"]
    assert "serving /app/models/best_model_converted.pth" in done.stdout
    assert ReloadSink.polls == 3  # it waited for the load to end
    expected = shipped.replace("model_path: best_model.pth  ",
                               "model_path: best_model_converted.pth  ")
    assert config.read_text() == expected != shipped  # the comment after the value stays
    assert yaml.safe_load(config.read_text())["model_path"] == "best_model_converted.pth"


def test_use_model_refuses_where_model_path_in_the_environment_wins(
        tmp_path: Path, app_url: str) -> None:
    shipped = (ROOT / "config" / "model.yml").read_text()
    config = tmp_path / "model.yml"
    config.write_text(shipped)
    refused = use_model(config, app_url, MODEL_PATH="best_model.pth")
    assert refused.returncode == 1 and "MODEL_PATH=best_model.pth" in refused.stderr
    assert config.read_text() == shipped and ReloadSink.posts == []


def test_use_model_fails_when_the_app_still_serves_the_old_file(
        tmp_path: Path, app_url: str) -> None:
    """The app reloaded but serves another file (it reads another config): fail, so the
    playbook's use_converted_env sets MODEL_PATH instead."""
    config = tmp_path / "model.yml"
    config.write_text("device: cpu  # no model_path line yet\n")
    ReloadSink.serves = "/app/models/best_model.pth"
    other = use_model(config, app_url)
    assert other.returncode == 1
    assert "serves /app/models/best_model.pth (READY" in other.stderr
    assert config.read_text() == ("device: cpu  # no model_path line yet\n"
                                  "model_path: best_model_converted.pth\n")
