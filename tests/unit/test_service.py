"""Remediator's webhook, store, intake and worker, with a fake runtime (no Docker)."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from remediator.core.config import RemediatorConfig
from remediator.core.targets import Target
from remediator.errors import TargetNotFound
from remediator.service.build import Service, build_service
from remediator.service.cli import main as cli
from remediator.service.web import create_app
from remediator.store.records import StepRecord
from tests.support.fakes import MODEL_APP, Call, FakeRuntime, model_app
from tests.support.fixtures import ALERTMANAGER, alertmanager_payload
from tests.support.raw_db import rows
from tests.support.services import FakeAlertmanager

FIXTURES = ALERTMANAGER
TOKEN = "change-me"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

PLAYBOOK = """
name: skeleton
match: {alertname: ModelLoadFailure}
steps:
  - id: logs
    action: docker.logs
    phase: diagnose
    with: {since: 10m, grep: "model|load|error"}
  - id: restore
    action: docker.copy
    phase: fix
    with: {src: /backup/models/best_model.pth, dest: /app/models/best_model.pth}
  - id: restart
    action: docker.restart
    phase: fix
  - id: healthy
    action: http.check
    phase: validate
    with: {path: /health, expect: {status: healthy, model_loaded: true}, retries: 1, interval: 0s}
"""


def fixture(name: str) -> bytes:
    return alertmanager_payload(name)


@pytest.fixture
def runtime() -> FakeRuntime:
    return model_app()


@pytest.fixture
def service(tmp_path: Path, runtime: FakeRuntime) -> Service:
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "skeleton.yml").write_text(PLAYBOOK)
    target = Target(name="app-prod", selector={"service": "app-prod"}, container="app-under-test",
                    base_url="http://127.0.0.1:1")
    config = RemediatorConfig(targets=[target], max_runs_per_hour=5)
    svc = build_service(config, db_path=tmp_path / "r.db", playbooks_dir=books, token=TOKEN,
                        runtime=runtime)
    yield svc
    svc.store.close()


@pytest.fixture
def client(service: Service) -> FlaskClient:
    return create_app(service).test_client()


def post(client: FlaskClient, body: bytes, headers: dict[str, str] | None = None,
         content_type: str = "application/json") -> Any:
    return client.post("/api/v1/alerts", data=body, content_type=content_type,
                       headers=AUTH if headers is None else headers)


def test_202_only_after_the_payload_is_on_disk(client: FlaskClient, service: Service) -> None:
    resp = post(client, fixture("firing-model-load-failure.json"))
    assert resp.status_code == 202
    other = sqlite3.connect(service.store.path)  # a second connection sees the commit
    (body,) = other.execute("SELECT body FROM inbox").fetchone()
    assert json.loads(body)["groupKey"].startswith("{}:{alertname")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Token change-me"}])
def test_missing_or_wrong_credentials_are_401(client: FlaskClient, headers: dict[str, str],
                                              service: Service) -> None:
    assert post(client, fixture("firing-model-load-failure.json"), headers).status_code == 401
    assert client.get("/api/v1/incidents", headers=headers).status_code == 401
    assert rows(service.store, "SELECT COUNT(*) AS n FROM inbox")[0]["n"] == 0


def test_basic_auth_as_alertmanager_sends_it_is_accepted(client: FlaskClient) -> None:
    basic = base64.b64encode(f"alertmanager:{TOKEN}".encode()).decode()
    resp = post(client, fixture("firing-model-load-failure.json"),
                {"Authorization": f"Basic {basic}"})
    assert resp.status_code == 202


def test_wrong_content_type_is_415_and_too_large_is_413(client: FlaskClient) -> None:
    assert post(client, b"{}", content_type="text/plain").status_code == 415
    assert post(client, b"x" * (2 * 2**20)).status_code == 413


def test_malformed_payload_is_400_and_kept_as_a_dead_letter(client: FlaskClient) -> None:
    resp = post(client, b'{"version": "4", "alerts": "nope"}')
    assert resp.status_code == 400
    assert "alerts" in resp.get_json()["error"]
    letters = client.get("/api/v1/dead-letters", headers=AUTH).get_json()["items"]
    assert len(letters) == 1 and '"alerts": "nope"' in letters[0]["body"]
    assert client.get("/api/v1/incidents", headers=AUTH).get_json()["items"] == []


def test_alert_becomes_incident_and_execution_with_its_steps(
        client: FlaskClient, service: Service, runtime: FakeRuntime) -> None:
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    (row,) = service.store.executions_in_state("pending")
    service.worker.run_execution(row)
    incidents = client.get("/api/v1/incidents", headers=AUTH).get_json()["items"]
    assert [(i["fingerprint"], i["status"], i["target"]) for i in incidents] == [
        ("0023b7e32bfe951f", "firing", "app-prod")]
    (ex,) = client.get("/api/v1/executions", headers=AUTH).get_json()["items"]
    assert (ex["incident_id"], ex["playbook"], ex["state"], ex["outcome"]) == (
        incidents[0]["id"], "skeleton", "finished", "success")
    assert [(s["id"], s["status"]) for s in ex["steps"]] == [
        ("logs", "ok"), ("restore", "ok"), ("restart", "ok"), ("healthy", "ok")]
    assert [c[0] for c in runtime.calls] == ["docker.logs", "docker.copy", "docker.restart",
                                             "http.check",
                                             "docker.inspect"]  # validated: last-known-good
    assert {c.target.container for c in runtime.calls} == {"app-under-test"}
    detail = client.get(f"/api/v1/executions/{ex['id']}", headers=AUTH).get_json()
    assert detail["steps"][1]["rendered_args"]["src"] == "/backup/models/best_model.pth"


def test_repeated_notice_starts_nothing_and_is_counted(client: FlaskClient,
                                                       service: Service) -> None:
    for _ in range(3):
        post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    assert len(service.store.executions()) == 1
    assert service.metrics.registry.get_sample_value("remediator_duplicates_total") == 2.0
    assert service.store.incidents()[0]["notices"] == 3


def test_resolved_notice_resolves_the_incident(client: FlaskClient, service: Service) -> None:
    post(client, fixture("firing-model-load-failure.json"))
    post(client, fixture("resolved-model-load-failure.json"))
    service.worker.intake.drain()
    (incident,) = service.store.incidents()
    assert incident["status"] == "resolved" and incident["resolved_at"]


def test_grouped_payload_splits_into_one_incident_per_alert(client: FlaskClient,
                                                            service: Service) -> None:
    post(client, fixture("firing-model-memory-usage-grouped.json"))
    service.worker.intake.drain()
    incidents = service.store.incidents()
    assert sorted(i["labels"]["instance"] for i in incidents) == ["app-prod-2:8080",
                                                                  "app-prod:8080"]
    # No playbook matches ModelMemoryUsage here: recorded and reported, never acted on.
    assert all("no playbook" in i["note"] for i in incidents)
    assert service.store.executions() == []


def test_alert_matching_no_declared_target_is_recorded_not_acted_on(
        client: FlaskClient, service: Service, runtime: FakeRuntime) -> None:
    body = json.loads(fixture("firing-model-load-failure.json"))
    body["alerts"][0]["labels"]["service"] = "somebody-else"
    post(client, json.dumps(body).encode())
    service.worker.intake.drain()
    (incident,) = service.store.incidents()
    assert incident["target"] is None and "no declared target" in incident["note"]
    assert service.store.executions() == [] and runtime.calls == []


def test_paused_runs_diagnosis_only(client: FlaskClient, service: Service,
                                    runtime: FakeRuntime) -> None:
    assert client.post("/api/v1/pause", headers=AUTH).get_json() == {"paused": True}
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    (row,) = service.store.executions_in_state("pending")
    service.worker.run_execution(row)
    assert [c[0] for c in runtime.calls] == ["docker.logs", "http.check"]
    (ex,) = service.store.executions()
    assert ex["outcome"] == "dry_run"
    assert {s["status"] for s in ex["steps"] if s["phase"] == "fix"} == {"skipped_dry_run"}


def test_probes_and_metrics(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["store"] is True
    post(client, b"{}", content_type="text/plain")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'remediator_webhook_requests_total{code="415"} 1.0' in text


def test_readiness_wants_docker_only_when_a_target_needs_it(client: FlaskClient,
                                                           service: Service) -> None:
    pings: list[bool] = []

    def engine_down() -> bool:
        pings.append(True)
        return False

    service.docker_ping = engine_down
    service.docker_error = lambda: "Docker engine unreachable at unix:///nowhere"
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.get_json()["docker_error"] == "Docker engine unreachable at unix:///nowhere"
    service.config.targets.clear()  # nothing to remediate: the engine is not a dependency
    idle = client.get("/readyz")
    assert idle.status_code == 200 and "docker" not in idle.get_json()
    assert len(pings) == 1


def test_serve_refuses_to_start_open_without_credentials(tmp_path: Path) -> None:
    config = tmp_path / "remediator.yml"
    config.write_text("targets: []\n")
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)],
                                env={"REMEDIATOR_WEBHOOK_TOKEN": ""})
    assert result.exit_code == 2
    assert "--insecure-no-auth" in result.output


def run_pending(service: Service) -> None:
    for row in service.store.executions_in_state("pending"):
        service.worker.run_execution(row)


def test_replay_dry_run_repeats_the_playbook_without_mutating(
        client: FlaskClient, service: Service, runtime: FakeRuntime) -> None:
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    run_pending(service)
    first = service.store.executions()[0]["id"]
    runtime.calls.clear()
    resp = client.post(f"/api/v1/executions/{first}/replay?dry_run=true", headers=AUTH)
    assert resp.status_code == 202 and resp.get_json()["replay_of"] == first
    run_pending(service)
    replay = service.store.execution(resp.get_json()["execution_id"])
    assert replay is not None
    assert (replay["replay_of"], replay["dry_run"], replay["outcome"]) == (first, True, "dry_run")
    assert [c[0] for c in runtime.calls] == ["docker.logs", "http.check"]
    assert client.post("/api/v1/executions/999/replay", headers=AUTH).status_code == 404


def test_report_tells_the_story_and_what_to_make_permanent(
        client: FlaskClient, service: Service) -> None:
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    run_pending(service)
    incident = service.store.incidents()[0]["id"]
    text = client.get(f"/api/v1/incidents/{incident}/report", headers=AUTH).get_data(
        as_text=True)
    assert text.startswith(f"# Incident {incident}: ModelLoadFailure on app-prod")
    assert "| restore | fix | docker.copy | ok |" in text
    assert "Outcome: **success**" in text
    assert "`/app/models/best_model.pth` was restored from `/backup/models/best_model.pth`" in text


def test_make_permanent_names_rewritten_files_and_commands_run_in_the_container() -> None:
    from remediator.service.report import permanent_changes

    def step(step_id: str, action: str, phase: str, args: dict[str, Any],
             status: str = "ok") -> dict[str, Any]:
        return {"id": step_id, "action": action, "phase": phase, "status": status,
                "rendered_args": args}

    changes = permanent_changes({"target": "app-prod", "steps": [
        step("check", "docker.exec", "diagnose", {"cmd": ["python", "-c", "import os"]}),
        step("use_converted", "docker.exec", "fix",
             {"cmd": ["python", "-c", "long script", "/app/config/model.yml", "x.pth"]}),
        step("restore_config", "docker.put_file", "fix", {"path": "/app/config/model.yml"}),
        step("failed_fix", "docker.exec", "fix", {"cmd": ["true"]}, status="failed")]})
    assert changes == [
        "`python -c <script> /app/config/model.yml x.pth` ran in `app-prod` (step "
        "use_converted): what it changed outside the container's volumes is lost on a "
        "recreate; make it part of the image or docker-compose.yml.",
        "`/app/config/model.yml` was rewritten in the running `app-prod`: unless it is on a "
        "volume, a recreate (docker-compose up) loses it; put the same file in the image or "
        "mount it."]


def test_resolved_notice_during_an_execution_skips_the_rest_of_the_fix(
        client: FlaskClient, service: Service, runtime: FakeRuntime) -> None:
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    original = runtime.call

    def resolve_midway(action: str, args: dict[str, Any], target: Target,
                       timeout: float) -> dict[str, Any]:
        if action == "docker.copy":  # the alert resolves while the first fix step runs
            post(client, fixture("resolved-model-load-failure.json"))
            service.worker.intake.drain()
        return original(action, args, target, timeout)

    runtime.call = resolve_midway  # type: ignore[method-assign]
    run_pending(service)
    (ex,) = service.store.executions()
    status = {s["id"]: s["status"] for s in ex["steps"]}
    assert status["restore"] == "ok" and status["restart"] == "skipped"
    assert {s["id"]: s["note"] for s in ex["steps"]}["restart"] == (
        "the alert resolved: remaining fix steps skipped")
    assert ex["error"] == "the alert resolved; validation passed"
    assert status["healthy"] == "ok"  # validation still runs
    assert "docker.restart" not in [c[0] for c in runtime.calls]


def test_pause_pressed_mid_run_skips_the_next_fix_step_and_says_why(
        client: FlaskClient, service: Service, runtime: FakeRuntime) -> None:
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    original = runtime.call

    def pause_midway(action: str, args: dict[str, Any], target: Target,
                     timeout: float) -> dict[str, Any]:
        if action == "docker.copy":  # an operator pauses while the first fix step runs
            assert CliRunner().invoke(cli, ["pause", "--db", service.store.path]).exit_code == 0
        return original(action, args, target, timeout)

    runtime.call = pause_midway  # type: ignore[method-assign]
    run_pending(service)
    (ex,) = service.store.executions()
    steps = {s["id"]: s for s in ex["steps"]}
    assert steps["restore"]["status"] == "ok" and steps["restart"]["status"] == "skipped"
    assert steps["restart"]["note"] == (
        "Remediator was paused (remediator pause): remaining fix steps skipped")
    assert steps["healthy"]["status"] == "ok"  # read-only validation still runs
    assert "docker.restart" not in [c[0] for c in runtime.calls]
    # A paused run did not finish its fix: it is not a success, fixed nothing, and the
    # chat channels are not told "fixed".
    assert ex["outcome"] == "aborted", ex
    assert ex["error"].startswith("Remediator was paused"), ex
    (incident,) = service.store.incidents()
    assert incident["fixed_at"] is None and incident["status"] == "firing", incident
    notices = [n.dedup_key for n in service.store.notifications()]
    assert not [key for key in notices if key.endswith("/info/fixed")], notices


def test_one_replica_of_a_service_is_remediated_at_a_time(
        client: FlaskClient, service: Service, runtime: FakeRuntime) -> None:
    second = Target(name="app-prod-2", selector={"service": "app-prod",
                                                 "instance": "app-prod-2:8080"},
                    container="replica-2", base_url="http://127.0.0.1:1")
    service.config.targets.append(second)
    for instance, fingerprint in (("app-prod:8080", "aa"), ("app-prod-2:8080", "bb")):
        body = json.loads(fixture("firing-model-load-failure.json"))
        body["alerts"][0]["labels"]["instance"] = instance
        body["alerts"][0]["fingerprint"] = fingerprint
        post(client, json.dumps(body).encode())
    service.worker.intake.drain()
    assert {e["target"] for e in service.store.executions()} == {"app-prod", "app-prod-2"}
    gate = __import__("threading").Event()
    original = runtime.call

    def slow(action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        gate.wait(5)
        return original(action, args, target, timeout)

    runtime.call = slow  # type: ignore[method-assign]
    service.worker._dispatch()
    running = [f for f in set(service.worker._busy.values())]
    assert len(running) == 1  # the second replica waits for the first
    gate.set()
    running[0].result(10)
    service.worker._dispatch()
    for future in set(service.worker._busy.values()):
        future.result(10)
    assert [e["outcome"] for e in service.store.executions()] == ["success", "success"]


def test_interrupted_execution_resumes_without_repeating_finished_steps(
        client: FlaskClient, service: Service, runtime: FakeRuntime) -> None:
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    (row,) = service.store.executions_in_state("pending")
    # A crash left it running: diagnosis done, the non-idempotent copy mid-flight.
    service.store.claim_execution(int(row["id"]))
    service.store.record_step(int(row["id"]), 0, StepRecord.from_dict(
        {"id": "logs", "action": "docker.logs", "phase": "diagnose", "status": "ok",
         "outputs": {"output": "FileNotFoundError"}}))
    service.store.record_step(int(row["id"]), 1, StepRecord.from_dict(
        {"id": "restore", "action": "docker.copy", "phase": "fix", "status": "running"}))
    (resumed,) = service.store.executions_in_state("running")
    service.worker.run_execution(resumed)
    (ex,) = service.store.executions()
    assert "docker.logs" not in [c[0] for c in runtime.calls]  # not repeated
    assert "docker.copy" not in [c[0] for c in runtime.calls]  # not blindly re-run
    assert ex["outcome"] == "escalated"


def test_an_execution_started_while_paused_stays_an_observation_when_resumed_unpaused(
        client: FlaskClient, service: Service, runtime: FakeRuntime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client.post("/api/v1/pause", headers=AUTH)
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    (row,) = service.store.executions_in_state("pending")
    record = service.store.record_step

    def crash_after_a_skipped_fix(execution_id: int, position: int, step: StepRecord,
                                  **kwargs: Any) -> bool:
        written = record(execution_id, position, step, **kwargs)
        if step["status"] == "skipped_dry_run":
            raise SystemExit("the process died here")
        return written

    monkeypatch.setattr(service.store, "record_step", crash_after_a_skipped_fix)
    with pytest.raises(SystemExit):
        service.worker.run_execution(row)
    monkeypatch.setattr(service.store, "record_step", record)
    client.post("/api/v1/resume", headers=AUTH)  # unpaused before the restart
    calls_before = len(runtime.calls)

    (resumed,) = service.store.executions_in_state("running")
    service.worker.run_execution(resumed)
    (ex,) = service.store.executions()
    assert ex["outcome"] == "dry_run" and ex["dry_run"] is True
    assert {c[0] for c in runtime.calls[calls_before:]} <= {"docker.logs", "http.check"}
    assert {s["status"] for s in ex["steps"] if s["phase"] == "fix"} == {"skipped_dry_run"}


def refire(minutes_later: int) -> bytes:
    body = json.loads(fixture("firing-model-load-failure.json"))
    body["alerts"][0]["startsAt"] = f"2026-11-29T11:{27 + minutes_later:02d}:02.749Z"
    return json.dumps(body).encode()


def fix_and_resolve(client: FlaskClient, service: Service) -> int:
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    run_pending(service)
    post(client, fixture("resolved-model-load-failure.json"))
    service.worker.intake.drain()
    (incident,) = service.store.incidents()
    assert incident["fixed_at"] and incident["status"] == "resolved"
    return int(incident["id"])


def test_regression_inside_the_stability_window_reopens_the_same_incident(
        client: FlaskClient, service: Service) -> None:
    incident_id = fix_and_resolve(client, service)
    post(client, refire(3))
    post(client, refire(3))  # a repeat of the re-fire is a duplicate of the same incident
    service.worker.intake.drain()
    (incident,) = service.store.incidents()
    assert (incident["id"], incident["status"], incident["reopened"]) == (incident_id, "firing", 1)
    assert len(service.store.executions_for(incident_id)) == 2


def test_a_fix_that_validates_records_last_known_good_at_once(
        client: FlaskClient, service: Service, runtime: FakeRuntime) -> None:
    assert service.store.last_known_good("app-prod") is None
    runtime.calls.clear()
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    run_pending(service)
    (execution,) = service.store.executions()
    assert execution["outcome"] == "success"
    recorded = service.store.last_known_good("app-prod")
    assert recorded is not None and recorded["image"] == "mobile-multimodal:0.1.0"
    assert runtime.calls[-1][0] == "docker.inspect"  # read after the validation, not before


def test_a_fix_that_does_not_validate_records_nothing(
        client: FlaskClient, service: Service, runtime: FakeRuntime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = runtime.call

    def unhealthy(action: str, args: dict[str, Any], target: Target,
                  timeout: float) -> dict[str, Any]:
        if action == "http.check":
            return {"ok": False, "status_code": 503, "output": "503", "body": {}}
        return real(action, args, target, timeout)

    monkeypatch.setattr(runtime, "call", unhealthy)
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    run_pending(service)
    assert service.store.executions()[0]["outcome"] != "success"
    assert service.store.last_known_good("app-prod") is None


def test_reconciliation_keeps_a_reopened_incident_its_alert_still_fires_under_a_new_start(
        client: FlaskClient, service: Service) -> None:
    from remediator.service.reconcile import Reconciler

    incident_id = fix_and_resolve(client, service)
    post(client, refire(3))  # re-fires inside the stability window: the same incident reopens
    service.worker.intake.drain()
    refired = json.loads(refire(3))["alerts"][0]
    manager = FakeAlertmanager([{**refired, "startsAt": "2026-11-29T11:30:02.749Z"}])
    reconciler = Reconciler(service.store, "http://alertmanager", service.writer.submit,
                            lambda: None, client=manager)  # type: ignore[arg-type]
    for _ in range(3):
        assert reconciler.reconcile() == 0  # known, by the re-fire's key (an alias)
        service.worker.intake.drain()
    (incident,) = service.store.incidents()
    assert (incident["id"], incident["status"]) == (incident_id, "firing")
    manager.answer = []  # now it ended, and its resolved notice was lost
    reconciler.reconcile()
    reconciler.reconcile()
    service.worker.intake.drain()
    assert service.store.incident(incident_id)["status"] == "resolved"  # type: ignore[index]


def test_incident_closes_after_the_window_and_records_last_known_good(
        client: FlaskClient, service: Service) -> None:
    incident_id = fix_and_resolve(client, service)
    assert service.worker.close_stable() == []  # the 2-minute window has not passed
    object.__setattr__(service.config, "stability_window_s", 0.0)
    assert service.worker.close_stable() == [incident_id]
    assert service.store.last_known_good("app-prod") == {
        "image": "mobile-multimodal:0.1.0", "env": ["MODEL_DIR=/app/models"],
        "storage": [],  # the fake's inspect reports no volumes
        "recorded_at": service.store.last_known_good("app-prod")["recorded_at"]}  # type: ignore[index]
    post(client, refire(30))  # after closing, a re-fire is a new incident
    service.worker.intake.drain()
    assert [i["id"] != incident_id for i in service.store.incidents()] == [True, False]


def test_a_playbooks_own_runs_per_hour_is_enforced_beside_the_configs(
        tmp_path: Path, runtime: FakeRuntime) -> None:
    books = tmp_path / "strict"
    books.mkdir()
    (books / "skeleton.yml").write_text(PLAYBOOK.replace(
        "match: {alertname: ModelLoadFailure}\n",
        "match: {alertname: ModelLoadFailure}\nlimits: {max_runs_per_hour: 2}\n"))
    target = Target(name="app-prod", selector={"service": "app-prod"}, container="c",
                    base_url="http://127.0.0.1:1")
    svc = build_service(RemediatorConfig(targets=[target], max_runs_per_hour=5),
                        db_path=tmp_path / "strict.db", playbooks_dir=books, token=TOKEN,
                        runtime=runtime)
    try:
        body = json.loads(fixture("firing-model-load-failure.json"))
        for n in range(3):
            body["alerts"][0]["fingerprint"] = f"{n:016x}"
            svc.store.add_inbox(json.dumps(body).encode())
        svc.worker.intake.drain()
        assert len(svc.store.executions()) == 2  # the config's 5 would have allowed 3
        third = svc.store.incidents()[0]  # newest first
        assert third["note"] == ("budget exhausted: playbook skeleton allows 2 runs per hour "
                                 "on app-prod (its limits.max_runs_per_hour); escalating "
                                 "instead of acting")
    finally:
        svc.store.close()


def test_retention_prunes_old_executions_but_keeps_incidents(
        client: FlaskClient, service: Service) -> None:
    post(client, fixture("firing-model-load-failure.json"))
    service.worker.intake.drain()
    run_pending(service)
    assert service.worker.prune() == 0  # young executions stay
    assert service.store.prune(datetime(9999, 1, 1, tzinfo=UTC)) == 1
    assert service.store.executions() == [] and len(service.store.incidents()) == 1
    assert rows(service.store, "SELECT COUNT(*) AS n FROM steps")[0]["n"] == 0


class TwoReplicas(FakeRuntime):
    """A Swarm service with two running replicas: only the alert's instance picks one."""

    def __init__(self) -> None:
        super().__init__(answers=MODEL_APP)

    def call(self, action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        if action == "docker.inspect":
            if target.instance is None:
                raise TargetNotFound("Swarm service 'app-prod' has 2 replicas and the alert "
                                     "has no instance label to pick one")
            self.calls.append(Call(action, args, target, timeout))
            return {"output": "running", "running": True, "image_id": "sha256:good",
                    "env": ["MODEL_DIR=/app/models"], "storage": ["/app/models=volume:m"]}
        return super().call(action, args, target, timeout)


def test_a_swarm_service_with_two_replicas_records_last_known_good_of_the_alerting_one(
        tmp_path: Path) -> None:
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "skeleton.yml").write_text(PLAYBOOK)
    target = Target(name="app-prod", selector={"service": "app-prod"}, container="app-prod",
                    base_url="http://127.0.0.1:1", swarm_service="app-prod")
    runtime = TwoReplicas()
    svc = build_service(RemediatorConfig(targets=[target], max_runs_per_hour=5),
                        db_path=tmp_path / "r.db", playbooks_dir=books, token=TOKEN,
                        runtime=runtime)
    try:
        incident_id = fix_and_resolve(create_app(svc).test_client(), svc)
        fixed = svc.store.last_known_good("app-prod")  # recorded when the fix validated
        assert fixed is not None and fixed["image"] == "sha256:good", fixed
        object.__setattr__(svc.config, "stability_window_s", 0.0)
        assert svc.worker.close_stable() == [incident_id]
        recorded = svc.store.last_known_good("app-prod")
        assert recorded is not None and recorded["image"] == "sha256:good", recorded
        assert recorded["storage"] == ["/app/models=volume:m"]
        inspected = [(c.action, c.args, c.target.instance) for c in runtime.calls]
        assert ("docker.inspect", {}, "app-prod:8080") in inspected  # the alert's replica
    finally:
        svc.store.close()
