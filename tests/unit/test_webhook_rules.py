"""The webhook's rules as a plain function (remediator.service.webhook.receive_webhook), without a
request: content type, size, dead letter, commit, answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remediator.core.defaults import MAX_WEBHOOK_BODY_BYTES
from remediator.service.build import Service
from remediator.service.webhook import TOO_LARGE, receive_webhook
from tests.support.fakes import FakeRuntime
from tests.support.fixtures import alertmanager_payload
from tests.support.raw_db import rows
from tests.support.services import playbook_service

PLAYBOOK = """
name: t
match: {alertname: ModelLoadFailure}
steps:
  - id: logs
    action: docker.logs
    phase: diagnose
"""
JSON = "application/json"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = playbook_service(tmp_path, PLAYBOOK, FakeRuntime(), token="t")
    yield svc
    svc.writer.close()
    svc.store.close()


def reader(body: bytes) -> Callable[[int], bytes]:
    return lambda cap: body[:cap]


def count(service: Service, table: str) -> int:
    return int(rows(service.store, f"SELECT count(*) AS n FROM {table}")[0]["n"])


def test_a_valid_payload_is_committed_before_the_202(service: Service) -> None:
    body = alertmanager_payload("firing-model-load-failure.json")
    answer = receive_webhook(service, JSON, "application/json; charset=utf-8", reader(body))
    assert answer.status == 202
    assert answer.body == {"status": "accepted", "inbox_id": answer.body["inbox_id"],
                           "alerts": 1}
    assert [bytes(r["body"]) for r in rows(service.store, "SELECT body FROM inbox")] == [body]


def test_another_content_type_is_415_and_the_body_is_not_read(service: Service) -> None:
    def unread(_cap: int) -> bytes:
        raise AssertionError("the body was read")

    answer = receive_webhook(service, "text/plain", "text/plain", unread)
    assert (answer.status, answer.body) == (
        415, {"error": "expected Content-Type application/json, got text/plain"})
    assert receive_webhook(service, "", None, unread).body["error"].endswith("got none")


def test_a_body_over_the_cap_is_413_and_nothing_is_kept(service: Service) -> None:
    big = b"{" + b" " * MAX_WEBHOOK_BODY_BYTES + b"}"
    asked: list[int] = []

    def read(cap: int) -> bytes:
        asked.append(cap)
        return big[:cap]

    answer = receive_webhook(service, JSON, JSON, read)
    assert (answer.status, answer.body) == (413, {"error": TOO_LARGE})
    assert asked == [MAX_WEBHOOK_BODY_BYTES + 1]  # one byte past the cap tells them apart
    assert count(service, "inbox") == count(service, "dead_letters") == 0


def test_an_invalid_payload_is_kept_as_a_dead_letter_and_answered_400(
        service: Service) -> None:
    answer = receive_webhook(service, JSON, "application/json", reader(b'{"alerts": 3}'))
    assert answer.status == 400 and answer.body["kept"] == "dead-letter"
    assert answer.body["error"] == "version: required field is missing"
    (letter,) = service.store.dead_letters()
    assert letter["reason"] == answer.body["error"]
    assert service.metrics.registry.get_sample_value("remediator_dead_letters_total") == 1
    assert count(service, "inbox") == 0


def test_a_store_that_cannot_commit_answers_503_so_alertmanager_resends(
        service: Service) -> None:
    service.writer.close()  # the writer refuses: as when the store is gone
    body = alertmanager_payload("firing-model-load-failure.json")
    answer = receive_webhook(service, JSON, JSON, reader(body))
    assert (answer.status, answer.body) == (503, {"error": "store unavailable; retry"})
