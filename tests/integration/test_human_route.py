"""The human route (issue 16 item 7): with Remediator stopped, the shipped rules and routing
deliver RemediatorDown by e-mail through an SMTP relay, not through Remediator.

Real Prometheus (the shipped prometheus.yml and alerts.yml, `for:` shortened, scraping a
Remediator port where nothing listens), real Alertmanager (the shipped alertmanager.yml as
`make up` renders it from ONCALL_EMAIL/ONCALL_SMARTHOST), a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from devstack.stack import (
    Timings,
    monitoring_auth,
    render_alertmanager_config,
    render_alerts,
    render_prometheus_config,
)
from tests.harness.docker_engine import ROOT
from tests.harness.processes import alertmanager, free_port, prometheus
from tests.harness.stack import wait

# for: 8s: Prometheus drops alerts fired before it has discovered Alertmanager (5 s).
QUICK = Timings(scrape_interval="1s", evaluation_interval="1s", alert_for="8s",
                group_wait="1s", group_interval="2s")


@dataclass
class Inbox:
    mails: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(email.message_from_bytes(envelope.content,
                                                   policy=email.policy.default))
        return "250 OK"


def test_remediator_down_reaches_a_human_by_email_without_remediator(tmp_path: Path) -> None:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        dead = free_port()  # Remediator stopped: its webhook and its /metrics answer nothing
        token = tmp_path / "token"
        token.write_text("unused")
        am_config = render_alertmanager_config(
            (ROOT / "monitoring/alertmanager.yml").read_text(),
            f"http://127.0.0.1:{dead}/api/v1/alerts", str(token), QUICK,
            oncall={"ONCALL_EMAIL": "oncall@example.test",
                    "ONCALL_SMARTHOST": f"127.0.0.1:{smtp.port}"})
        auth = monitoring_auth(tmp_path)
        am_port = free_port()
        prom_config = render_prometheus_config(
            (ROOT / "monitoring/prometheus.yml").read_text(),
            {"alertmanager:9093": f"127.0.0.1:{am_port}", "remediator:9096": f"127.0.0.1:{dead}",
             "app-prod:8080": f"127.0.0.1:{free_port()}"}, QUICK, auth)
        rules = {"alerts.yml": render_alerts((ROOT / "monitoring/alerts.yml").read_text(), QUICK)}
        with alertmanager(tmp_path, am_config, port=am_port, auth=auth), \
                prometheus(tmp_path, prom_config, rules, auth=auth):
            mails = wait(lambda: [m for m in inbox.mails
                                  if "RemediatorDown" in str(m["Subject"])], 60,
                         "RemediatorDown by e-mail")
        assert mails[0]["To"] == "oncall@example.test"
        body = mails[0].get_body(("plain", "html"))
        assert body is not None and "Remediator is down" in body.get_content()
    finally:
        smtp.stop()
