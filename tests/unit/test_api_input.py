"""Bad input to the API gets a clear 4xx saying what and where: never a 500, never lost data."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from remediator.core.defaults import MAX_WEBHOOK_BODY_BYTES as MAX_BODY_BYTES
from remediator.service.build import Service
from remediator.service.web import create_app
from tests.support.fakes import FakeRuntime
from tests.support.fixtures import ALERTMANAGER
from tests.support.raw_db import execute, rows
from tests.support.services import playbook_service

FIXTURES = ALERTMANAGER
TOKEN = "t0k"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HUGE_ID = "99999999999999999999"  # past SQLite's 64-bit INTEGER

PLAYBOOK = """
name: echo
match: {alertname: ModelLoadFailure}
steps:
  - id: echo
    phase: fix
    action: docker.exec
    with:
      cmd: [echo, "{{ alert.labels.instance }}"]
"""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    runtime = FakeRuntime(docker__exec={"output": "ok", "exit_code": 0})
    svc = playbook_service(tmp_path, PLAYBOOK, runtime, token=TOKEN, max_runs_per_hour=1000)
    yield svc
    svc.store.close()


@pytest.fixture
def client(service: Service) -> FlaskClient:
    return create_app(service).test_client()


def firing() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "firing-model-load-failure.json").read_text())
    return data


def post_alerts(client: FlaskClient, body: bytes) -> Any:
    return client.post("/api/v1/alerts", data=body, content_type="application/json",
                       headers=AUTH)


def post_chunked(client: FlaskClient, body: bytes) -> Any:
    """As gunicorn hands on a chunked request: no Content-Length, a terminated stream."""
    return client.post("/api/v1/alerts", input_stream=io.BytesIO(body),
                       content_type="application/json",
                       headers={**AUTH, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def count(service: Service, table: str) -> int:
    return int(rows(service.store, f"SELECT count(*) AS n FROM {table}")[0]["n"])


def one_execution(client: FlaskClient, service: Service) -> int:
    assert post_alerts(client, json.dumps(firing()).encode()).status_code == 202
    service.worker.intake.drain()
    return int(service.store.executions()[0]["id"])


# 1. Ids beyond SQLite's integer range

@pytest.mark.parametrize(("method", "path", "message"), [
    ("GET", f"/api/v1/executions/{HUGE_ID}", f"no execution {HUGE_ID}"),
    ("GET", f"/api/v1/incidents/{HUGE_ID}", f"no incident {HUGE_ID}"),
    ("GET", f"/api/v1/incidents/{HUGE_ID}/report", f"no incident {HUGE_ID}"),
    ("POST", f"/api/v1/executions/{HUGE_ID}/replay", f"no execution {HUGE_ID}"),
    ("POST", f"/api/v1/incidents/{HUGE_ID}/claim", f"no incident {HUGE_ID}"),
])
def test_an_id_past_sqlites_range_is_404_no_such_row_not_500(
        client: FlaskClient, method: str, path: str, message: str) -> None:
    resp = client.open(path, method=method, headers=AUTH, json={"by": "alice"})
    assert (resp.status_code, resp.get_json()) == (404, {"error": message})


def test_an_id_past_range_without_credentials_is_still_401(client: FlaskClient) -> None:
    assert client.get(f"/api/v1/executions/{HUGE_ID}").status_code == 401


# 3. Body limit without Content-Length, and what the webhook counter counts

def test_chunked_body_over_the_limit_is_413_like_one_with_content_length(
        client: FlaskClient, service: Service) -> None:
    payload = firing()
    payload["alerts"][0]["annotations"]["description"] = "x" * (2 * MAX_BODY_BYTES)
    resp = post_chunked(client, json.dumps(payload).encode())
    assert resp.status_code == 413
    assert resp.get_json() == {"error": f"body larger than {MAX_BODY_BYTES} bytes"}
    assert (count(service, "inbox"), count(service, "dead_letters")) == (0, 0)


def test_chunked_body_of_exactly_the_limit_is_accepted_whole(
        client: FlaskClient, service: Service) -> None:
    body = json.dumps(firing()).encode()
    body = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"
    assert len(body) == MAX_BODY_BYTES
    assert post_chunked(client, body).status_code == 202
    (row,) = rows(service.store, "SELECT length(body) AS n FROM inbox")
    assert row["n"] == MAX_BODY_BYTES


def test_content_length_one_past_the_limit_is_413(client: FlaskClient) -> None:
    assert post_alerts(client, b" " * (MAX_BODY_BYTES + 1)).status_code == 413


def test_413_on_another_route_is_not_counted_as_a_webhook(
        client: FlaskClient, service: Service) -> None:
    big = b"{" + b" " * (2 * MAX_BODY_BYTES) + b"}"
    resp = client.post("/api/v1/incidents/1/claim", data=big, content_type="application/json",
                       headers=AUTH)
    assert resp.status_code == 413
    registry = service.metrics.registry
    assert registry.get_sample_value("remediator_webhook_requests_total", {"code": "413"}) \
        in (None, 0.0)
    assert post_alerts(client, big).status_code == 413
    assert registry.get_sample_value("remediator_webhook_requests_total",
                                     {"code": "413"}) == 1.0


# 5. Text that is not Unicode (a lone surrogate through a JSON escape)

def test_lone_surrogate_label_is_400_naming_the_label_and_kept_as_dead_letter(
        client: FlaskClient, service: Service) -> None:
    payload = firing()
    payload["alerts"][0].pop("fingerprint")
    payload["alerts"][0]["labels"]["pod"] = "\ud800"
    body = json.dumps(payload).encode()  # ASCII: the surrogate travels as the escape \ud800
    resp = post_alerts(client, body)
    assert resp.status_code == 400
    assert resp.get_json()["error"].startswith("alerts[0].labels.pod: ")
    assert resp.get_json()["kept"] == "dead-letter"
    (letter,) = rows(service.store, "SELECT body FROM dead_letters")
    assert letter["body"] == body


def test_report_of_stored_text_with_a_lone_surrogate_is_200(
        client: FlaskClient, service: Service) -> None:
    one_execution(client, service)
    incident = service.store.incidents()[0]
    labels = {**incident["labels"], "instance": "x\udcff"}  # kept before payloads were checked
    execute(service.store, "UPDATE incidents SET labels = ? WHERE id = ?",
            (json.dumps(labels), incident["id"]))
    resp = client.get(f"/api/v1/incidents/{incident['id']}/report", headers=AUTH)
    assert resp.status_code == 200
    assert "(x?)" in resp.get_data(as_text=True).splitlines()[0]


# 6. dry_run: never a real run on a value we do not understand

@pytest.mark.parametrize(("query", "dry_run"), [
    ("?dry_run", True), ("?dry_run=", True), ("?dry_run=on", True), ("?dry_run=YES", True),
    ("?dry_run=1", True), ("?dry_run=True", True), ("?dry_run=off", False),
    ("?dry_run=no", False), ("?dry_run=0", False), ("?dry_run=false", False), ("", False),
])
def test_replay_dry_run_accepts_the_usual_spellings(
        client: FlaskClient, service: Service, query: str, dry_run: bool) -> None:
    first = one_execution(client, service)
    resp = client.post(f"/api/v1/executions/{first}/replay{query}", headers=AUTH)
    assert resp.status_code == 202 and resp.get_json()["dry_run"] is dry_run
    replay = service.store.execution(resp.get_json()["execution_id"])
    assert replay is not None and replay["dry_run"] is dry_run


@pytest.mark.parametrize("value", ["maybe", "ture", "2"])
def test_replay_with_an_unknown_dry_run_value_is_400_and_queues_nothing(
        client: FlaskClient, service: Service, value: str) -> None:
    first = one_execution(client, service)
    resp = client.post(f"/api/v1/executions/{first}/replay?dry_run={value}", headers=AUTH)
    assert resp.status_code == 400
    assert resp.get_json()["error"].startswith("dry_run: expected true or false")
    assert len(service.store.executions()) == 1


# 9. Errors under /api/ are JSON

def test_unknown_api_path_and_wrong_method_answer_json(client: FlaskClient) -> None:
    missing = client.get("/api/v1/nothing-here", headers=AUTH)
    assert (missing.status_code, missing.get_json()) == (
        404, {"error": "no such endpoint: /api/v1/nothing-here"})
    wrong = client.get("/api/v1/pause", headers=AUTH)
    assert (wrong.status_code, wrong.get_json()) == (
        405, {"error": "GET is not allowed on /api/v1/pause"})
    assert "POST" in wrong.headers["Allow"]
    assert client.get("/nothing-here").mimetype == "text/html"  # outside the API: unchanged
