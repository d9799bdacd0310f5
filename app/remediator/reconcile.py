"""Reconciliation: ask Alertmanager what is firing, and open the incidents we missed.

Webhooks are lost while Remediator is down. On start and every few minutes it reads
Alertmanager's v2 API for active alerts routed to it, and stores those it does not know
as an ordinary payload in the inbox, so they go through the same intake and dedup.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

from remediator.adapters.http import HttpClient
from remediator.adapters.store import Store
from remediator.core.alerts import parse_alert
from remediator.errors import PayloadError

__all__ = ["RECONCILE_INTERVAL", "Reconciler", "to_webhook"]

log = logging.getLogger("remediator.reconcile")

RECONCILE_INTERVAL = 180.0
"""Seconds between two reconciliations with Alertmanager."""

RECEIVER = "remediator"
"""Alertmanager receiver whose alerts are Remediator's (the name in alertmanager.yml)."""


def to_webhook(alerts: list[dict[str, Any]], receiver: str = RECEIVER) -> dict[str, Any]:
    """Alertmanager v2 API alerts as a webhook v4 payload (firing, endsAt year 1)."""
    items = [{"status": "firing", "labels": a.get("labels", {}),
              "annotations": a.get("annotations", {}), "startsAt": a["startsAt"],
              "endsAt": "0001-01-01T00:00:00Z", "generatorURL": a.get("generatorURL", ""),
              "fingerprint": a["fingerprint"]} for a in alerts]
    return {"receiver": receiver, "status": "firing", "alerts": items, "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "version": "4",
            "groupKey": "reconcile", "truncatedAlerts": 0}


class Reconciler:
    def __init__(self, store: Store, alertmanager_url: str, submit: Callable[[bytes], int],
                 wake: Callable[[], None], *, interval: float = RECONCILE_INTERVAL,
                 receiver: str = RECEIVER, client: HttpClient | None = None) -> None:
        self.store = store
        self.url = alertmanager_url.rstrip("/")
        self.submit = submit
        self.wake = wake
        self.interval = interval
        self.receiver = receiver
        self.client = client or HttpClient()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except ConnectionError as exc:  # Alertmanager down: try again next round
                log.warning("reconciliation skipped: %s", exc)
            except Exception:
                log.exception("reconciliation with %s failed", self.url)
            self._stop.wait(self.interval)

    def fetch(self) -> list[dict[str, Any]]:
        params = {"active": "true", "silenced": "false", "inhibited": "false",
                  "receiver": f"^{self.receiver}$"}
        try:
            resp = self.client.request("GET", f"{self.url}/api/v2/alerts", params=params)
            resp.raise_for_status()
            alerts = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise ConnectionError(f"Alertmanager {self.url} unreachable: {exc}") from None
        return [a for a in alerts if isinstance(a, dict) and "fingerprint" in a]

    def reconcile(self) -> int:
        """Store the firing alerts we do not know; returns how many were missed."""
        missed = [a for a in self.fetch() if not self._known(a)]
        if missed:
            body = json.dumps(to_webhook(missed, self.receiver)).encode()
            self.submit(body)
            self.wake()
            log.warning("reconciliation: %d firing alert(s) were missed; stored", len(missed))
        return len(missed)

    def _known(self, raw: dict[str, Any]) -> bool:
        try:
            alert = parse_alert(to_webhook([raw])["alerts"][0])
        except PayloadError:
            return True  # not something intake could use either
        rows = self.store.query("SELECT 1 FROM incidents WHERE incident_key = ?",
                                (alert.incident_key,))
        return bool(rows)
