"""Replicas as one Remediator: three `remediator serve` processes on one PostgreSQL
database, behind two Alertmanagers that are not clustered with each other (as in a
partition, each delivers the same alert), each posting every alert to every replica; a real
Prometheus scraping a real app container.

A real fault (scenario 2, out of memory) → the app is repaired, and:
- the store holds exactly one incident for it and one execution;
- every notification reached the escalation webhook (a local HTTP sink) exactly once;
- the Docker engine's own events for the container show the repair's mutations
  (`docker update` of the memory limit, `docker restart`) once each.

Real Docker, real Prometheus, Alertmanager, PostgreSQL 15 and `remediator serve`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.demo import inject_fault
from tests.harness.docker_engine import Resources
from tests.harness.faults import wait_for_fault
from tests.harness.postgres import Cluster
from tests.harness.replicas import Replicated, docker_actions, replicated_loop
from tests.harness.stack import wait
from tests.support.http_sink import HttpSink

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

HEALTHY = {"status": "healthy", "model_loaded": True}
REPLICAS = 3
SETTLE_S = 15.0
"""After the incident resolved: time for a late duplicate (a second replica's delivery, a
second run) to show before counting."""


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    with HttpSink(path="/escalation") as server:
        yield server


def firing(ha: Replicated) -> bool:
    return any(a["state"] == "firing" for a in ha.app_loop.alerts("ModelLoadFailure"))


def incidents(ha: Replicated) -> list[dict[str, Any]]:
    return [i for i in ha.api("/api/v1/incidents?limit=200")["items"]
            if i["labels"].get("alertname") == "ModelLoadFailure"]


def test_three_replicas_behind_two_partitioned_alertmanagers_repair_once_and_notify_once(
        tmp_path: Path, images: dict[str, str], docker_resources: Resources,
        pg_cluster: Cluster, sink: HttpSink) -> None:
    env = {"ESCALATION_WEBHOOK_URL": sink.url, **pg_cluster.env()}
    db_url = pg_cluster.create_database(migrated=False)  # the replicas migrate it, together
    with replicated_loop(tmp_path, docker_resources, images["modelserver"], db_url,
                         count=REPLICAS, env=env) as ha:
        name = str(ha.app_loop.app.name)
        wait(lambda: not firing(ha) and ha.app_loop.health() == HEALTHY, 90, "a quiet start")
        inject_fault(docker_resources.client, name, "oom")
        # From here on: the fault's own stop/update/start are behind us.
        with docker_actions(docker_resources.client, name) as seen:
            wait_for_fault(docker_resources.client, name, ha.app_url, "oom")

            def repaired() -> dict[str, Any] | None:
                items = ha.api("/api/v1/executions?limit=200")["items"]
                done = next((e for e in items if e["state"] == "finished"), None)
                return done if done and ha.app_loop.health() == HEALTHY else None

            execution = wait(repaired, 240, "a fix and a healthy app", interval=1)
            assert (execution["outcome"], execution["scenario"]) == ("success",
                                                                     "out_of_memory")
            wait(lambda: [i for i in incidents(ha) if i["status"] == "resolved"], 120,
                 "the incident to resolve once the alert stops firing", interval=1)
            time.sleep(SETTLE_S)

        # One incident, one execution, however many replicas and Alertmanagers heard it.
        (incident,) = incidents(ha)
        executions = ha.api("/api/v1/executions?limit=200")["items"]
        assert [e["id"] for e in executions] == [execution["id"]], executions
        assert execution["incident_id"] == incident["id"]
        accepted = {replica.name: ha.metric(replica, "remediator_webhook_requests_total")
                    for replica in ha.replicas}
        heard = [name for name, count in accepted.items() if count > 0]
        assert len(heard) >= 2, f"the alert reached only {heard}: not the case under test"

        # Each notification reached the webhook channel once (the sink counts).
        notifications = ha.api("/api/v1/notifications?limit=200")["items"]
        expected = Counter((n["dedup_key"], n["kind"]) for n in notifications
                           for d in n["channels"]
                           if d["channel_type"] == "webhook" and d["status"] == "delivered")
        received = Counter((r.json()["dedup_key"], r.json()["kind"]) for r in sink.requests)
        assert received == expected and set(received.values()) == {1}, (received, expected)
        assert any(n["team"] == "infrastructure" and n["kind"] == "trigger"
                   for n in notifications), notifications  # the runbook's hardware escalation

        # The Docker engine saw each of the repair's mutations once.
        actions = Counter(seen)
        assert (actions["update"], actions["restart"]) == (1, 1), actions
        lifecycle = {k: v for k, v in actions.items() if not k.startswith("exec_")}
        print(f"\n{REPLICAS} replicas: webhook requests per replica {accepted}; "
              f"notifications at the sink {sorted(received.values())} "
              f"(kinds {sorted(k for _, k in received)}); the container's events after the "
              f"fault {lifecycle}")
