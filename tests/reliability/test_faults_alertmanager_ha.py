"""Fault: Alertmanager runs highly available, so the same alert can arrive twice.

Two real Alertmanager processes get the same alert, with one startsAt, the way Prometheus
sends it to every Alertmanager it knows (POST /api/v2/alerts to each). Clustered
(--cluster.peer on loopback), they gossip and normally only one notifies; partitioned (not
peered), both notify. Either way Remediator opens one incident and runs one execution; in
the partitioned case the second webhook is counted as a duplicate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from devstack.stack import Timings, render_alertmanager_config
from tests.harness.docker_engine import ROOT
from tests.harness.processes import Proc, alertmanager, free_port
from tests.reliability.conftest import (
    TOKEN,
    ServeFactory,
    SleeperFactory,
    alert,
    config_yaml,
    iso,
    target_yaml,
    wait_for,
)

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

PEER_TIMEOUT_S = 15
"""Alertmanager's default --cluster.peer-timeout: the second peer notifies (or, seeing
the first one's entry in the gossiped notification log, does not) this much later."""

PLAYBOOK = """
name: look
match: {alertname: ModelLoadFailure}
steps:
  - id: look
    phase: diagnose
    action: docker.inspect
"""


@contextlib.contextmanager
def pair(tmp: Path, config: str, clustered: bool) -> Iterator[tuple[Proc, Proc]]:
    """Two Alertmanagers with ``config``: peered with each other, or each on its own."""
    ports = (free_port(), free_port()) if clustered else (None, None)
    peers = [[f"127.0.0.1:{ports[1]}"], [f"127.0.0.1:{ports[0]}"]] if clustered else [[], []]
    with alertmanager(tmp, config, cluster_port=ports[0], peers=peers[0], name="am1") as one, \
            alertmanager(tmp, config, cluster_port=ports[1], peers=peers[1], name="am2") as two:
        if clustered:
            wait_for(lambda: all(len(peer_names(am)) == 2 for am in (one, two)), 30,
                     "the two Alertmanagers to form a cluster")
        yield one, two


def peer_names(am: Proc) -> list[str]:
    status = requests.get(f"{am.url}/api/v2/status", timeout=5).json()
    return [peer["name"] for peer in status["cluster"].get("peers") or []]


@pytest.mark.parametrize("topology", ["clustered", "partitioned"])
def test_alertmanager_ha_pair_sending_one_alert_gives_one_incident_and_one_execution(
        topology: str, tmp_path: Path, serve: ServeFactory, sleeper: SleeperFactory) -> None:
    box = sleeper()
    port = free_port()
    rem = serve(config_yaml(target_yaml("app-prod", box.name)), {"look.yml": PLAYBOOK},
                port=port)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    am_config = render_alertmanager_config(
        (ROOT / "monitoring/alertmanager.yml").read_text(),
        f"http://127.0.0.1:{port}/api/v1/alerts", str(token),
        Timings(group_wait="1s", group_interval="2s", repeat_interval="1h"))
    now = datetime.now(UTC)
    sent = alert(starts_at=now, job="app-prod")
    prometheus_alert = {"labels": sent["labels"], "annotations": sent["annotations"],
                        "startsAt": iso(now), "endsAt": iso(now + timedelta(minutes=5)),
                        "generatorURL": sent["generatorURL"]}

    with pair(tmp_path, am_config, clustered=topology == "clustered") as ams:
        for am in ams:  # as Prometheus does: the same alert to every Alertmanager
            resp = requests.post(f"{am.url}/api/v2/alerts", json=[prometheus_alert], timeout=5)
            assert resp.status_code == 200, resp.text
        posted = time.monotonic()
        if topology == "partitioned":
            wait_for(lambda: rem.sql("SELECT COUNT(*) FROM inbox")[0][0] >= 2, 60,
                     "a webhook from each Alertmanager")
        else:
            wait_for(lambda: rem.sql("SELECT COUNT(*) FROM inbox")[0][0] >= 1, 60,
                     "the cluster's webhook")
            # Give the second peer its turn: it would send now if it had not seen the first.
            time.sleep(max(0.0, posted + PEER_TIMEOUT_S + 3 - time.monotonic()))
        wait_for(lambda: rem.sql("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL")
                 == [(0,)], 30, "intake to catch up")
        (execution,) = wait_for(lambda: [e for e in rem.items("executions")
                                         if e["state"] == "finished"], 30, "the execution")

    # Count once the Alertmanagers are gone, and intake has caught up: a late send from a
    # peer then counts on both sides (webhooks and the incident's notices) or on neither.
    wait_for(lambda: rem.sql("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL")
             == [(0,)], 30, "intake to catch up")
    webhooks = rem.sql("SELECT COUNT(*) FROM inbox")[0][0]
    duplicates = rem.metric("remediator_duplicates_total")
    (incident,) = rem.items("incidents")
    assert incident["startsAt"].startswith(iso(now)[:23])
    assert incident["labels"] == sent["labels"]
    assert incident["notices"] == webhooks
    assert execution["incident_id"] == incident["id"] and execution["outcome"] == "success"
    assert len(rem.items("executions")) == 1
    if topology == "partitioned":
        assert webhooks == 2 and duplicates >= 1
