"""Reconciliation reads only an answer shaped like Alertmanager's: anything else is an
error for that round, never "nothing is firing" (two of those would resolve everything)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediator.service.build import Service
from remediator.service.reconcile import Reconciler
from remediator.service.web import create_app
from tests.support.fakes import FakeRuntime
from tests.support.fixtures import ALERTMANAGER
from tests.support.raw_db import rows
from tests.support.services import FakeAlertmanager, playbook_service

FIXTURES = ALERTMANAGER
TOKEN = "t0k"
PLAYBOOK = """
name: echo
match: {alertname: ModelLoadFailure}
steps:
  - id: echo
    phase: diagnose
    action: docker.logs
"""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = playbook_service(tmp_path, PLAYBOOK, FakeRuntime(docker__logs={"output": "", "lines": 0}),
                           token=TOKEN)
    resp = create_app(svc).test_client().post(
        "/api/v1/alerts", data=(FIXTURES / "firing-model-load-failure.json").read_bytes(),
        content_type="application/json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 202
    svc.worker.intake.drain()
    yield svc
    svc.store.close()


def reconciler(service: Service, answer: Any) -> Reconciler:
    return Reconciler(service.store, "http://alertmanager", service.writer.submit,
                      lambda: None, client=FakeAlertmanager(answer))  # type: ignore[arg-type]


@pytest.mark.parametrize(("answer", "said"), [
    ({"data": []}, "answered a JSON object, not a list of alerts"),
    ({"status": "success", "data": {"alerts": []}}, "answered a JSON object"),
    ([{"labels": {"alertname": "ModelLoadFailure"}}], "item [0] that is not an alert"),
    (["text"], "item [0] that is not an alert"),
])
def test_an_answer_not_shaped_like_alerts_resolves_nothing(
        service: Service, answer: Any, said: str) -> None:
    rec = reconciler(service, answer)
    for _ in range(3):
        with pytest.raises(ConnectionError, match=said.replace("[", r"\[").replace("]", r"\]")):
            rec.reconcile()
        service.worker.intake.drain()
    (incident,) = service.store.incidents()
    assert incident["status"] == "firing"
    assert rows(service.store, "SELECT count(*) AS n FROM inbox")[0]["n"] == 1  # the webhook


def test_the_loop_logs_an_unexpected_answer_as_a_skipped_round(
        service: Service, caplog: pytest.LogCaptureFixture) -> None:
    rec = reconciler(service, {"data": []})
    rec.interval = 3600
    def logged() -> bool:
        return any("reconciliation skipped" in r.getMessage() and "not a list of alerts"
                   in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="remediator.service.reconcile"):
        rec.start()
        deadline = time.monotonic() + 10
        while not logged() and time.monotonic() < deadline:
            time.sleep(0.01)
        rec.stop()
    assert logged()


def test_an_empty_list_still_resolves_after_two_rounds(service: Service) -> None:
    rec = reconciler(service, [])
    rec.reconcile()
    rec.reconcile()
    service.worker.intake.drain()
    (incident,) = service.store.incidents()
    assert incident["status"] == "resolved"
