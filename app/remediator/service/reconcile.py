"""Reconciliation: ask Alertmanager what is firing; open what we missed, resolve what ended.

Webhooks are lost while Remediator is down. On start and every few minutes it reads
Alertmanager's v2 API for active alerts routed to it, and stores those it does not know
as an ordinary payload in the inbox, so they go through the same intake and dedup.

The other way round: an incident still firing here whose alert Alertmanager no longer has
(its resolved notice was lost) is resolved, through a `resolved` payload in the inbox,
once two reconciliations in a row did not find it. One miss is not enough: an
Alertmanager restarted without its state has no alerts until Prometheus sends them again.

With several replicas, the leader reconciles (one replica at a time), and a replica that
becomes leader reconciles at once: the one before may have died with webhooks lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from remediator.adapters.http import HttpClient
from remediator.background import BackgroundLoop
from remediator.core import defaults
from remediator.core.alerts import parse_alert
from remediator.core.clock import now_iso
from remediator.errors import PayloadError, Unreachable
from remediator.metrics import ServiceMetrics
from remediator.store import Store

__all__ = ["Reconciler", "to_webhook"]

log = logging.getLogger("remediator.service.reconcile")

RECEIVER = "remediator"
"""Alertmanager receiver whose alerts are Remediator's (the name in alertmanager.yml)."""


def to_webhook(alerts: list[dict[str, Any]], receiver: str = RECEIVER,
               status: str = "firing") -> dict[str, Any]:
    """Alertmanager v2 API alerts as a webhook v4 payload (firing: endsAt year 1)."""
    items = [{"status": status, "labels": a.get("labels", {}),
              "annotations": a.get("annotations", {}), "startsAt": a["startsAt"],
              "endsAt": a.get("endsAt") if status == "resolved" else "0001-01-01T00:00:00Z",
              "generatorURL": a.get("generatorURL", ""),
              "fingerprint": a["fingerprint"]} for a in alerts]
    return {"receiver": receiver, "status": status, "alerts": items, "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "version": "4",
            "groupKey": "reconcile", "truncatedAlerts": 0}


_JSON_TYPES = {dict: "object", str: "string", int: "number", float: "number",
               bool: "boolean", type(None): "null"}
"""JSON's names for what json.loads returns (an answer is described as JSON, not Python)."""

class Reconciler:
    def __init__(self, store: Store, alertmanager_url: str, submit: Callable[[bytes], int],
                 wake: Callable[[], None], *, interval: float = defaults.RECONCILE_INTERVAL_S,
                 receiver: str = RECEIVER, client: HttpClient | None = None,
                 metrics: ServiceMetrics | None = None,
                 is_leader: Callable[[], bool] = lambda: True) -> None:
        self.store = store
        self.is_leader = is_leader
        self.url = alertmanager_url.rstrip("/")
        self.submit = submit
        self.wake = wake
        self.interval = interval
        self.receiver = receiver
        self.client = client or HttpClient()
        self._loop = BackgroundLoop("reconcile", self._round, interval_s=interval,
                                    metrics=metrics, log=log)
        self._absent: set[int] = set()  # incidents firing here, not in Alertmanager last look

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(5)

    def _round(self) -> float:
        if not self.is_leader():  # the leader replica reconciles; a new one at once
            return defaults.LEADER_POLL_S
        try:
            self.reconcile()
        except ConnectionError as exc:  # down or answering nonsense: next round
            log.warning("reconciliation skipped: %s", exc)
        return self.interval

    def fetch(self, everything: bool = False) -> list[dict[str, Any]]:
        """Active alerts routed to us, not silenced or inhibited (what intake would act on);
        with ``everything``, every alert Alertmanager still has, whoever receives it."""
        params = {"active": "true", "silenced": "false", "inhibited": "false",
                  "receiver": f"^{self.receiver}$"}
        if everything:
            params = {"active": "true", "silenced": "true", "inhibited": "true",
                      "unprocessed": "true"}
        try:
            alerts = self.client.get_json(f"{self.url}/api/v2/alerts", params=params)
        except Unreachable as exc:
            raise ConnectionError(f"Alertmanager {self.url} unreachable: {exc}") from None
        return self._alert_list(alerts)

    def _alert_list(self, alerts: Any) -> list[dict[str, Any]]:
        """Alertmanager's answer, if it is a list of alerts. Any other shape is an error,
        not an empty list: read as "nothing firing", two rounds of it would resolve every
        incident."""
        if not isinstance(alerts, list):
            kind = _JSON_TYPES.get(type(alerts), type(alerts).__name__)
            raise ConnectionError(f"Alertmanager {self.url}/api/v2/alerts answered a JSON "
                                  f"{kind}, not a list of alerts; nothing opened or resolved "
                                  "this round")
        for index, alert in enumerate(alerts):
            if not isinstance(alert, dict) or not isinstance(alert.get("fingerprint"), str):
                raise ConnectionError(f"Alertmanager {self.url}/api/v2/alerts answered an "
                                      f"item [{index}] that is not an alert with a "
                                      "fingerprint; nothing opened or resolved this round")
        return alerts

    def reconcile(self) -> int:
        """Store the firing alerts we do not know, and resolve the incidents Alertmanager
        has not had twice running; returns how many firing alerts were missed."""
        active = self.fetch()
        missed = [a for a in active if not self._known(a)]
        if missed:
            body = json.dumps(to_webhook(missed, self.receiver)).encode()
            self.submit(body)
            self.wake()
            log.warning("reconciliation: %d firing alert(s) were missed; stored", len(missed))
        # Silenced, inhibited or routed elsewhere is still firing: only an alert
        # Alertmanager no longer has at all has ended.
        self._resolve_ended({key for a in self.fetch(everything=True)
                             if (key := _key(a)) is not None})
        return len(missed)

    def _resolve_ended(self, active: set[str]) -> None:
        live = self._incident_ids(active)
        firing = self.store.firing_incidents()
        absent = {row.id: row for row in firing if row.id not in live}
        ended = [row for number, row in absent.items() if number in self._absent]
        self._absent = set(absent) - {row.id for row in ended}
        if not ended:
            return
        now = now_iso()
        alerts = [{"labels": dict(row.labels), "annotations": dict(row.annotations),
                   "startsAt": row.starts_at, "endsAt": now,
                   "generatorURL": row.generator_url, "fingerprint": row.fingerprint}
                  for row in ended]
        self.submit(json.dumps(to_webhook(alerts, self.receiver, "resolved")).encode())
        self.wake()
        log.warning("reconciliation: %d incident(s) firing here are no longer active in "
                    "Alertmanager (twice running): their resolved notices were missed; "
                    "resolving them", len(ended))

    def _known(self, raw: dict[str, Any]) -> bool:
        key = _key(raw)
        if key is None:
            return True  # not something intake could use either
        return bool(self._incident_ids({key}))

    def _incident_ids(self, keys: set[str]) -> set[int]:
        """The incidents these alert keys belong to: by their own key, or by the key of a
        re-fire that reopened them (an alias)."""
        return self.store.incident_ids_for_keys(keys)


def _key(raw: dict[str, Any]) -> str | None:
    """The incident key of an Alertmanager v2 alert; None when intake could not parse it."""
    try:
        return parse_alert(to_webhook([raw])["alerts"][0]).incident_key
    except PayloadError:
        return None
