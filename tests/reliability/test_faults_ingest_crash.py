"""Fault: `remediator serve` is SIGKILLed (whole process group) twice during an ingest burst.

Senders keep posting distinct alerts throughout and behave as Alertmanager does: a payload
that got no answer (connection refused or dropped) or a 5xx is sent again, unchanged, until
it gets a 202. Afterwards every payload that got a 202 is one incident — none lost, none
doubled by a retry whose first attempt had in fact been stored — and every stored payload
was processed exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

import requests

from tests.reliability.conftest import (
    AUTH,
    Served,
    ServeFactory,
    alert,
    config_yaml,
    wait_for,
    webhook,
)

SENDERS = 4
PER_SENDER = 150
KILL_AFTER = (150, 400)  # acknowledged alerts before each SIGKILL


@dataclass
class Sender:
    """One Alertmanager-like sender: its own alerts, posted in order, retried until 202."""

    url: str
    bodies: dict[int, bytes]
    acked: list[int] = field(default_factory=list)
    unanswered: Counter[int] = field(default_factory=Counter)  # seq -> attempts lost
    refused: list[int] = field(default_factory=list)  # 4xx: must never happen here

    def run(self, stop: threading.Event) -> None:
        session = requests.Session()
        headers = {**AUTH, "Content-Type": "application/json"}
        for seq, body in self.bodies.items():
            while not stop.is_set():
                try:
                    resp = session.post(self.url, data=body, headers=headers, timeout=10)
                except requests.RequestException:
                    self.unanswered[seq] += 1
                    session = requests.Session()  # its pooled connection died with serve
                    time.sleep(0.05)
                    continue
                if resp.status_code == 202:
                    self.acked.append(seq)
                    break
                if resp.status_code >= 500:
                    self.unanswered[seq] += 1
                    time.sleep(0.05)
                    continue
                self.refused.append(seq)
                break


def acknowledged(senders: list[Sender], at_least: int) -> bool:
    return sum(len(s.acked) for s in senders) >= at_least


def test_sigkill_during_an_ingest_burst_loses_and_doubles_nothing(
        serve: ServeFactory) -> None:
    rem = serve(config_yaml(""), {}, ready="/healthz")  # intake only: no Docker involved
    url = f"{rem.url}/api/v1/alerts"
    senders = [Sender(url, {n: webhook(alert(seq=str(n), sender=str(s)))
                            for n in range(s * PER_SENDER, (s + 1) * PER_SENDER)})
               for s in range(SENDERS)]
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in senders]
    for thread in threads:
        thread.start()
    try:
        current: Served = rem
        for threshold in KILL_AFTER:
            wait_for(partial(acknowledged, senders, threshold), 60,
                     f"{threshold} acknowledged alerts")
            current.kill()
            current = current.restart(ready="/healthz")
        for thread in threads:
            thread.join(120)
    finally:
        stop.set()
    rem = current

    assert not [s.refused for s in senders if s.refused]
    expected = {seq for s in senders for seq in s.bodies}
    acked = [seq for s in senders for seq in s.acked]
    assert sorted(acked) == sorted(expected)  # each payload acknowledged once, in the end
    retried = sum(len(s.unanswered) for s in senders)
    assert retried >= 2, "the kills did not land mid-burst: no sender had to retry"

    wait_for(lambda: rem.sql("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL")
             == [(0,)], 60, "intake to process every stored payload")
    per_seq = Counter(int(json.loads(labels)["seq"])
                      for (labels,) in rem.sql("SELECT labels FROM incidents"))
    assert set(per_seq) == expected, "an acknowledged alert is missing from the store"
    assert [seq for seq, n in per_seq.items() if n > 1] == [], "a retry became an incident"
    stored = rem.sql("SELECT COUNT(*) FROM inbox")[0][0]
    # Processed once: each stored payload counted once against its incident, no more.
    assert rem.sql("SELECT SUM(notices) FROM incidents") == [(stored,)]
    assert rem.sql("SELECT COUNT(*) FROM dead_letters") == [(0,)]
    assert stored >= len(expected)  # the extra rows are retries whose 202 was lost
