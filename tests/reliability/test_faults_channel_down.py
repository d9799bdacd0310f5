"""Fault: the notification channel is down (503) for a while, then comes back.

The escalation waits in the outbox and is retried with backoff; the remediation that asked
for it is not held up (it finishes while the channel is still down); once the channel
answers, the notification is delivered exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from tests.reliability.conftest import (
    ServeFactory,
    SleeperFactory,
    alert,
    config_yaml,
    target_yaml,
    wait_for,
    webhook,
)
from tests.support.http_sink import HttpSink, RecordedRequest

pytestmark = pytest.mark.docker

PLAYBOOK = """
name: tell-then-look
match: {alertname: ModelLoadFailure}
steps:
  - id: tell
    phase: diagnose
    action: notify
    with: {team: ml-team-lead, level: notify, reason: "Model failed to load; on it"}
  - id: look
    phase: diagnose
    action: docker.inspect
"""


class OutageSink(HttpSink):
    """Answers 503 while ``down`` is set, then 202; remembers every answer it gave."""

    def __init__(self) -> None:
        super().__init__(path="/escalations", default_status=202)
        self.down = threading.Event()
        self.answers: list[tuple[int, RecordedRequest]] = []

    def respond(self, request: RecordedRequest) -> tuple[int, Mapping[str, str], bytes]:
        status = 503 if self.down.is_set() else 202
        with self._lock:
            self.answers.append((status, request))
        return status, {}, b"down for maintenance" if status == 503 else b"accepted"

    def answered(self, status: int) -> list[RecordedRequest]:
        with self._lock:
            return [request for code, request in self.answers if code == status]


def test_channel_down_delays_the_notice_not_the_fix_and_delivers_it_once(
        serve: ServeFactory, sleeper: SleeperFactory) -> None:
    box = sleeper()
    with OutageSink() as sink:
        sink.down.set()
        rem = serve(config_yaml(target_yaml("app-prod", box.name)),
                    {"tell.yml": PLAYBOOK}, env={"ESCALATION_WEBHOOK_URL": sink.url})
        assert rem.post(webhook(alert())).status_code == 202

        (execution,) = wait_for(lambda: [e for e in rem.items("executions")
                                         if e["state"] == "finished"],
                                30, "the execution to finish while the channel is down")
        assert [s["status"] for s in execution["steps"]] == ["ok", "ok"]
        assert execution["outcome"] == "escalated", execution
        # The channel was tried and refused, more than once, after the fix had ended.
        wait_for(lambda: len(sink.answered(503)) >= 2, 30, "two refused attempts")

        def between_attempts() -> list[dict[str, Any]]:
            # Read between two attempts, not during one (then the channel says "sending").
            (trigger,) = [n for n in rem.api("/api/v1/notifications")["items"]
                          if n["kind"] == "trigger"]
            webhook_channel = next(c for c in trigger["channels"] if c["channel"] == "webhook")
            return [trigger] if webhook_channel["status"] != "sending" else []

        (pending,) = wait_for(between_attempts, 30, "the channel between two attempts")
        hook = next(c for c in pending["channels"] if c["channel"] == "webhook")
        assert pending["status"] == "pending" and hook["status"] == "retry", pending
        assert "503" in hook["last_error"], hook

        sink.down.clear()  # the channel is back
        delivered = wait_for(lambda: [n for n in rem.api("/api/v1/notifications")["items"]
                                      if n["kind"] == "trigger" and n["status"] == "delivered"],
                             30, "the notification to be delivered after the outage")
        time.sleep(1.5)  # a second delivery would have been due by now
        accepted = sink.answered(202)
        assert len(accepted) == 1, [r.json() for r in accepted]
        body = accepted[0].json()
        assert body["kind"] == "trigger" and body["team"] == "ml-team-lead"
        assert body["dedup_key"] == delivered[0]["dedup_key"]
        assert "on it" in body["text"]
        # Every attempt carried the same notification (the same dedup key).
        assert {r.json()["dedup_key"] for r in sink.requests} == {body["dedup_key"]}
        hook = next(c for c in delivered[0]["channels"] if c["channel"] == "webhook")
        assert hook["attempts"] == len(sink.requests)
