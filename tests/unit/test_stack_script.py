"""scripts/stack.py's start_app decides from /model/health whether `make up` may recreate
app-prod's kept model volumes: only when it created the container and the primary model
file is not the shipped one. Docker is a recording stand-in here; the app's /model/health
is a real local HTTP server. (tests/integration/test_stack_up.py runs it on a real engine.)"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import docker.errors
import pytest

from devstack.stack import AppSpec
from tests.harness.stack import load_stack_script
from tests.support.http_sink import HttpSink, RecordedRequest, normalise_response

IMAGE_ENV = ["PATH=/opt/venv/bin:/usr/bin", "MODEL_STORE=/opt/model-store"]
SHIPPED_ATTRS: dict[str, Any] = {"HostConfig": {"Memory": 3 * 2**30, "CpuQuota": 0,
                                                "NanoCpus": 0},
                                 "Config": {"Env": IMAGE_ENV}}


class FakeBox:
    def __init__(self, name: str, log: list[str], attrs: dict[str, Any] | None = None) -> None:
        self.name, self.short_id, self.status, self.log = name, "abc123", "running", log
        self.attrs = attrs or SHIPPED_ATTRS

    def remove(self, force: bool = False) -> None:
        self.log.append(f"remove container {self.name}")


class FakeVolume:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def remove(self, force: bool = False) -> None:
        self.log.append(f"remove volume {self.name}")


class FakeClient:
    """containers.get/run/list and volumes.get, recording what would change."""

    def __init__(self, present: bool, other_users: list[str] | None = None,
                 attrs: dict[str, Any] | None = None) -> None:
        self.log: list[str] = []
        self.present = present
        self.other_users = other_users or []
        self.attrs = attrs
        outer = self

        class Containers:
            def get(self, name: str) -> FakeBox:
                if not outer.present:
                    raise docker.errors.NotFound("no such container")
                return FakeBox(name, outer.log, outer.attrs)

            def run(self, **kwargs: Any) -> FakeBox:
                outer.log.append(f"run {kwargs['name']}")
                return FakeBox(kwargs["name"], outer.log)

            def list(self, all: bool = False, filters: dict[str, str] | None = None
                     ) -> list[FakeBox]:
                return [FakeBox(n, outer.log) for n in outer.other_users]

        class Volumes:
            def get(self, name: str) -> FakeVolume:
                return FakeVolume(name, outer.log)

        class Images:
            def get(self, name: str) -> Any:
                return type("Image", (), {"attrs": {"Config": {"Env": IMAGE_ENV}}})()

        self.containers, self.volumes, self.images = Containers(), Volumes(), Images()


@pytest.fixture
def model_health() -> Iterator[tuple[int, dict[str, Any]]]:
    """A local /model/health answering whatever the test puts in the dict (and a healthy
    /health, for the wait after a recreation)."""
    answer: dict[str, Any] = {}

    class ModelHealth(HttpSink):
        def respond(self, request: RecordedRequest) -> tuple[int, Mapping[str, str], bytes]:
            if request.path == "/health":
                return normalise_response((200, {}, {"status": "healthy"}))
            assert request.path == "/model/health", request.path
            return normalise_response((200, {}, dict(answer)))

    with ModelHealth(path="/model/health") as sink:
        yield int(sink.url.split(":")[2].split("/")[0]), answer


def failed(checksum_ok: bool | None, reason: str) -> dict[str, Any]:
    return {"state": "FAILED", "loading": False, "checksum_ok": checksum_ok, "reason": reason}


def test_a_created_app_whose_files_are_intact_keeps_its_volumes(
        model_health: tuple[int, dict[str, Any]]) -> None:
    port, answer = model_health
    answer.update(failed(True, "ModelLoadTimeout: the load took longer than 120s"))
    stack, client = load_stack_script(), FakeClient(present=False)
    with pytest.raises(stack.StackError, match=r"FAILED: ModelLoadTimeout.*intact.*is kept"):
        stack.start_app(client, AppSpec(port=port))
    assert client.log == ["run app-prod"]  # created, and nothing removed


def test_a_present_container_is_never_touched(model_health: tuple[int, dict[str, Any]]
                                              ) -> None:
    port, answer = model_health
    answer.update(failed(False, "ModelFormatTooOld: version 0"))
    stack, client = load_stack_script(), FakeClient(present=True)
    with pytest.raises(stack.StackError, match=r"is FAILED: ModelFormatTooOld.*make clean"):
        stack.start_app(client, AppSpec(port=port))
    assert client.log == []


def test_volumes_another_container_uses_are_not_removed(
        model_health: tuple[int, dict[str, Any]]) -> None:
    port, answer = model_health
    answer.update(failed(None, "ModelFileMissing: best_model.pth"))
    stack, client = load_stack_script(), FakeClient(present=False, other_users=["app-prod-old"])
    with pytest.raises(stack.StackError, match=r"app-prod-old also use\(s\) app-prod-models"):
        stack.start_app(client, AppSpec(port=port))
    assert client.log == ["run app-prod"]  # the new container stays; no volume removed


def test_a_load_in_progress_is_waited_for(model_health: tuple[int, dict[str, Any]]) -> None:
    port, answer = model_health
    answer.update({"state": "LOADING", "loading": False, "checksum_ok": None})
    stack = load_stack_script()
    with pytest.raises(stack.StackError, match="no load outcome after 1s"):
        stack.settled_model_health(AppSpec(port=port), 1)
    answer.update({"state": "READY", "loading": False, "checksum_ok": True})
    assert stack.settled_model_health(AppSpec(port=port), 5)["state"] == "READY"


SHIPPED_MODEL = {"state": "READY", "loading": False, "model_type": "primary",
                 "model_path": "/app/models/best_model.pth", "checksum_ok": None}
RECREATED = ["remove container app-prod", "remove volume app-prod-models",
             "remove volume app-prod-backup", "run app-prod"]


def test_a_demo_starts_on_the_shipped_app_as_it_is(model_health: tuple[int, dict[str, Any]]
                                                   ) -> None:
    port, answer = model_health
    answer.update(SHIPPED_MODEL)
    stack, client = load_stack_script(), FakeClient(present=True)
    stack.as_shipped(client, AppSpec(port=port))
    assert client.log == []


@pytest.mark.parametrize(("model", "attrs", "said"), [
    ({"model_path": "/app/models/best_model_converted.pth"}, SHIPPED_ATTRS,
     "serves /app/models/best_model_converted.pth"),
    ({"state": "DEGRADED", "model_type": "fallback"}, SHIPPED_ATTRS,
     "is DEGRADED serving fallback"),
    ({}, {**SHIPPED_ATTRS, "HostConfig": {"Memory": 4 * 2**30}}, "memory limit is 4294967296"),
    ({}, {**SHIPPED_ATTRS, "Config": {"Env": [*IMAGE_ENV, "MODEL_DEBUG_FAULTS=1"]}},
     "started with MODEL_DEBUG_FAULTS=1"),
])
def test_an_app_an_earlier_demo_changed_is_recreated_from_the_image_first(
        model_health: tuple[int, dict[str, Any]], capsys: pytest.CaptureFixture[str],
        model: dict[str, Any], attrs: dict[str, Any], said: str) -> None:
    # An old-format demo's fix leaves app-prod serving the converted file: a permissions
    # fault on best_model.pth would then break nothing and the demo would wait 10 minutes.
    port, answer = model_health
    answer.update({**SHIPPED_MODEL, **model})
    stack, client = load_stack_script(), FakeClient(present=True, attrs=attrs)
    stack.as_shipped(client, AppSpec(port=port))
    assert client.log == RECREATED
    assert said in capsys.readouterr().out


def test_make_up_runs_prometheus_and_alertmanager_with_basic_auth_and_no_lifecycle_api(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16 item 1 and 7 in `make up`'s own code (processes recorded, not started)."""
    import stat

    import yaml

    stack = load_stack_script()
    started: dict[str, tuple[list[str], dict[str, str]]] = {}
    monkeypatch.setattr(stack, "spawn", lambda state, name, argv, env=None: (
        started.setdefault(name, (argv, env or {})), tmp_path / f"{name}.log")[1])
    monkeypatch.setattr(stack, "wait_for", lambda *args, **kwargs: None)
    monkeypatch.setenv("ONCALL_EMAIL", "sre@example.test")
    monkeypatch.setenv("ONCALL_SMARTHOST", "relay.example.test:25")
    auth = stack.monitoring_auth(tmp_path)
    stack.start_remediator(tmp_path, auth)
    stack.start_alertmanager(tmp_path, auth)
    stack.start_prometheus(tmp_path, auth)

    for name in ("prometheus", "alertmanager"):
        argv = " ".join(started[name][0])
        assert f"--web.config.file={auth.web_config}" in argv and "lifecycle" not in argv
    assert started["remediator"][1]["REMEDIATOR_MONITORING_PASSWORD_FILE"] == str(
        auth.password_file)
    prom = yaml.safe_load((tmp_path / "prometheus/prometheus.yml").read_text())
    assert prom["alerting"]["alertmanagers"][0]["basic_auth"] == {
        "username": "monitoring", "password_file": str(auth.password_file)}
    # The shipped file finds Alertmanagers by DNS (compose's `ha` runs two); here, its address.
    [manager] = prom["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": ["127.0.0.1:9093"]}]
    assert "dns_sd_configs" not in manager
    [scrape] = [job for job in prom["scrape_configs"] if job["job_name"] == "alertmanager"]
    assert scrape["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    assert scrape["basic_auth"] == {"username": "monitoring",
                                    "password_file": str(auth.password_file)}
    am = yaml.safe_load((tmp_path / "alertmanager/alertmanager.yml").read_text())
    [oncall] = [r for r in am["receivers"] if r["name"] == "oncall"]
    assert oncall["email_configs"][0]["to"] == "sre@example.test"
    assert oncall["email_configs"][0]["smarthost"] == "relay.example.test:25"
    for path in (auth.password_file, auth.web_config):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_demo_all_leaves_app_prod_as_shipped_and_recorded_in_the_production_store(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `make demo-all`, Remediator is back on STATE/remediator.db with app-prod as
    shipped and recorded there as its last-known-good (else a rollback is refused as
    "another incarnation"); each scenario's store is removed with its -wal, -shm and .lock.
    Processes and Docker are recorded stand-ins; the store files are real."""
    import devstack.demo as demo

    stack = load_stack_script()
    steps: list[str] = []
    scenario_db = tmp_path / "demo-all" / "01-missing-file.db"
    scenario_db.parent.mkdir()
    leftovers = [scenario_db.with_name(scenario_db.name + suffix)
                 for suffix in ("", "-wal", "-shm", ".lock")]
    for path in leftovers:
        path.write_text("an earlier demo-all's")

    def start_remediator(state: Any, auth: Any, db: Any = None) -> None:
        steps.append(f"start {db.name if db else 'remediator.db'}")
        if db is not None:
            assert [p.name for p in leftovers if p.exists()] == [], "an old store reused"

    monkeypatch.setattr(stack, "DEMO_ALL", ["missing-file"])
    monkeypatch.setattr(stack, "pid_alive", lambda pidfile: 1)
    monkeypatch.setattr(stack, "docker_client", lambda: FakeClient(present=True))
    monkeypatch.setattr(stack, "stop_process", lambda state, name: steps.append(f"stop {name}"))
    monkeypatch.setattr(stack, "start_remediator", start_remediator)
    monkeypatch.setattr(stack, "as_shipped", lambda client, spec: steps.append("as shipped"))
    monkeypatch.setattr(stack, "known_good", lambda client, state, spec, db=None: steps.append(
        f"known good in {db.name if db else 'remediator.db'}"))
    monkeypatch.setattr(demo, "wait_alerts_clear", lambda url, timeout: None)

    def run_demo(*args: Any, **kwargs: Any) -> Any:
        steps.append("run missing-file")
        raise TimeoutError("app-prod not healthy after 600s")

    monkeypatch.setattr(demo, "run_demo", run_demo)
    assert stack.demo_all(tmp_path) == 1  # the one scenario was not repaired

    assert steps == [
        "as shipped", "stop remediator", "start 01-missing-file.db",
        "known good in 01-missing-file.db", "run missing-file",
        "stop remediator", "as shipped", "known good in remediator.db", "start remediator.db"]


@pytest.mark.parametrize(("env", "unset"), [
    ({}, "ONCALL_EMAIL and ONCALL_SMARTHOST not set"),
    ({"ONCALL_EMAIL": "sre@example.test"}, "ONCALL_SMARTHOST not set"),
    ({"ONCALL_SMARTHOST": "relay.example.test:25"}, "ONCALL_EMAIL not set"),
])
def test_make_up_warns_when_the_human_route_reaches_no_one(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        env: dict[str, str], unset: str) -> None:
    stack = load_stack_script()
    monkeypatch.setattr(stack, "spawn", lambda state, name, argv, env=None: tmp_path / "log")
    monkeypatch.setattr(stack, "wait_for", lambda *args, **kwargs: None)
    for name in ("ONCALL_EMAIL", "ONCALL_SMARTHOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stack.start_alertmanager(tmp_path, stack.monitoring_auth(tmp_path))
    [line] = [line for line in capsys.readouterr().out.splitlines() if "WARNING" in line]
    assert unset in line and "make down && make up" in line


def test_make_up_says_nothing_when_the_human_route_is_set(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    stack = load_stack_script()
    monkeypatch.setattr(stack, "spawn", lambda state, name, argv, env=None: tmp_path / "log")
    monkeypatch.setattr(stack, "wait_for", lambda *args, **kwargs: None)
    monkeypatch.setenv("ONCALL_EMAIL", "sre@example.test")
    monkeypatch.setenv("ONCALL_SMARTHOST", "relay.example.test:25")
    stack.start_alertmanager(tmp_path, stack.monitoring_auth(tmp_path))
    assert "WARNING" not in capsys.readouterr().out


def test_make_up_starts_alertmanager_without_what_it_sent_before_make_down(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Seen in make demo after make down / make up: the alert fired again, but Alertmanager's
    # notification log said it was sent already (the stack stopped before it resolved), so
    # the webhook came only with reconciliation, 3 minutes later. Silences are kept.
    stack = load_stack_script()
    monkeypatch.setattr(stack, "spawn", lambda state, name, argv, env=None: tmp_path / "log")
    monkeypatch.setattr(stack, "wait_for", lambda *args, **kwargs: None)
    data = tmp_path / "alertmanager" / "data"
    data.mkdir(parents=True)
    (data / "nflog").write_bytes(b"sent before make down")
    (data / "silences").write_bytes(b"an operator's silence")
    stack.start_alertmanager(tmp_path, stack.monitoring_auth(tmp_path))
    assert not (data / "nflog").exists()
    assert (data / "silences").read_bytes() == b"an operator's silence"
