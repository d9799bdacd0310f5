"""Hostile input against the running app: fuzzed webhooks, injection through labels, auth.

Never a 5xx or a crash; valid payloads get 202 and an incident, invalid ones 400 and a
dead letter (never an incident); label values stay data all the way to the runtime.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediator.core.config import RemediatorConfig
from remediator.core.targets import Target
from remediator.service.build import Service, build_service
from remediator.service.web import create_app
from tests.support.fakes import FakeRuntime
from tests.support.fixtures import ALERTMANAGER
from tests.support.raw_db import rows

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ALERTMANAGER
TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

PLAYBOOK = """
name: echo
match: {alertname: ModelLoadFailure}
steps:
  - id: echo
    phase: fix
    action: docker.exec
    with:
      cmd: [echo, "{{ alert.labels.instance }}", "{{ alert.annotations.summary }}"]
  - id: copy
    phase: fix
    action: docker.copy
    with: {src: "/backup/models/{{ alert.labels.model }}", dest: /app/models/}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, FakeRuntime]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "playbooks").mkdir()
    (tmp / "playbooks" / "echo.yml").write_text(PLAYBOOK)
    quiet = {"output": "", "stdout": "", "stderr": "", "exit_code": 0}
    runtime = FakeRuntime(docker__exec=quiet, docker__copy=quiet)
    target = Target(name="app-prod", selector={"service": "app-prod"}, container="app-prod",
                    base_url="http://127.0.0.1:1")
    service = build_service(RemediatorConfig(targets=[target], max_runs_per_hour=10**6),
                            db_path=tmp / "r.db", playbooks_dir=tmp / "playbooks",
                            token=TOKEN, runtime=runtime)
    yield service, runtime
    service.close()


@pytest.fixture(scope="module")
def client(world: tuple[Service, FakeRuntime]) -> FlaskClient:
    return create_app(world[0]).test_client()


def fixture_payloads() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A real fixture with one field replaced, removed or added somewhere."""
    payload = json.loads(json.dumps(draw(st.sampled_from(fixture_payloads()))))
    node: Any = payload
    path = draw(st.lists(st.sampled_from(["alerts", 0, "labels", "annotations", "startsAt",
                                          "status", "fingerprint", "version"]), max_size=3))
    for key in path:
        if isinstance(node, dict) and key in node and isinstance(node[key], dict | list):
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and node:
            node = node[0]
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.booleans()):
            node[key] = draw(JSON)
        else:
            del node[key]
    return payload


def post(client: FlaskClient, body: bytes) -> Any:
    return client.post("/api/v1/alerts", data=body, content_type="application/json",
                       headers=AUTH)


def counts(service: Service) -> tuple[int, int]:
    incidents = rows(service.store, "SELECT COUNT(*) AS n FROM incidents")[0]["n"]
    letters = rows(service.store, "SELECT COUNT(*) AS n FROM dead_letters")[0]["n"]
    return int(incidents), int(letters)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()))
def test_garbage_is_a_400_and_a_dead_letter_never_a_5xx(
        client: FlaskClient, world: tuple[Service, FakeRuntime], body: bytes) -> None:
    service, _ = world
    before = counts(service)
    resp = post(client, body)
    assert resp.status_code in (202, 400), resp.get_data()
    if resp.status_code == 400:
        assert counts(service)[1] == before[1] + 1
        assert "error" in resp.get_json()


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=mutated())
def test_mutated_fixtures_are_accepted_or_refused_cleanly(
        client: FlaskClient, world: tuple[Service, FakeRuntime], payload: dict[str, Any]) -> None:
    service, _ = world
    incidents, letters = counts(service)
    resp = post(client, json.dumps(payload).encode())
    assert resp.status_code in (202, 400)
    service.worker.intake.drain()
    after = counts(service)
    if resp.status_code == 400:
        assert after == (incidents, letters + 1)  # kept, never an incident
    else:
        assert after[1] == letters


HOSTILE = [
    "{{ 7*7 }}", "{% for x in range(10**9) %}x{% endfor %}", "$(touch /tmp/pwned); rm -rf /",
    "`id`", "a;b|c&&d", "../../etc/passwd", "x" * 100_000, "ünïcödé ✓ 🚨", "nul\x00byte",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}", "${HOME}", "\n--flag",
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_label_values_reach_the_runtime_as_literal_data(
        client: FlaskClient, world: tuple[Service, FakeRuntime], value: str,
        tmp_path: Path) -> None:
    service, runtime = world
    body = json.loads((FIXTURES / "firing-model-load-failure.json").read_text())
    alert = body["alerts"][0]
    alert["labels"].update(instance=value, model=value)
    alert["annotations"]["summary"] = value
    alert["fingerprint"] = f"{abs(hash(value)):016x}"[:16]
    alert["startsAt"] = "2026-11-29T12:00:00.000Z"
    resp = post(client, json.dumps(body).encode())
    if resp.status_code == 400:  # e.g. NUL bytes may be refused: then never acted on
        assert "error" in resp.get_json()
        return
    runtime.calls.clear()
    service.worker.intake.drain()
    for row in service.store.executions_in_state("pending"):
        service.worker.run_execution(row)
    echo = [args for action, args, _, _ in runtime.calls if action == "docker.exec"]
    assert echo and echo[-1]["cmd"] == ["echo", value, value]  # one argv element, verbatim
    assert {call.target.container for call in runtime.calls} == {"app-prod"}
    copies = [args for action, args, _, _ in runtime.calls if action == "docker.copy"]
    if ".." in value.split("/") or "\x00" in value:  # refused before any copy
        assert copies == []
        (ex,) = [e for e in service.store.executions(5) if e["steps"]][:1]
        assert ex["steps"][-1]["status"] == "failed"
        assert "refused" in ex["steps"][-1]["error"] or "absolute path" in ex["steps"][-1]["error"]
    else:
        assert [a["src"] for a in copies] == [f"/backup/models/{value}"]
    assert not Path("/tmp/pwned").exists()


def test_printable_ascii_labels_round_trip_through_the_store(
        client: FlaskClient, world: tuple[Service, FakeRuntime]) -> None:
    service, _ = world
    body = json.loads((FIXTURES / "firing-model-load-failure.json").read_text())
    body["alerts"][0]["labels"]["note"] = string.printable
    body["alerts"][0]["fingerprint"] = "feedfacefeedface"
    assert post(client, json.dumps(body).encode()).status_code == 202
    service.worker.intake.drain()
    found = [i for i in service.store.incidents(1000) if i["fingerprint"] == "feedfacefeedface"]
    assert found[0]["labels"]["note"] == string.printable
