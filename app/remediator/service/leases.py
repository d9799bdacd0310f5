"""This replica's leases in the shared store: the leader lease and those of its runs.

Any number of `remediator serve` on one database behave as one Remediator by holding
leases (rows with an owner and an expiry, taken atomically by the store), renewed every
third of their length by one thread here:

- ``leader``: one replica at a time runs the escalation timer, reconciliation with
  Alertmanager, housekeeping and the recovery of deliveries another replica left mid-send.
  When the leader stops renewing (dead, cut off from the database), another takes the
  lease once it has expired. A replica counts itself leader only until the end of its
  last renewal that the store confirmed: cut off, it stops before anyone else may start.
- each running execution (``claim_execution`` with an owner and ``lease_until``) and the
  exclusive keys of its target (``target:<name>``, ``service:<name>``): another replica
  takes the execution over only when its lease expired, and never runs a second execution
  on the same target meanwhile. A run whose lease is no longer confirmed stops before its
  next mutating step (:meth:`RunLease.lost`).

Moments are each replica's own clock (an expiry written by one is compared with another's
"now"): replicas' clocks must agree to well within a lease (NTP does; 15 s leases).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from remediator.background import BackgroundLoop
from remediator.core import defaults
from remediator.core.clock import Clock, utc_now
from remediator.store import Store

__all__ = ["LEADER", "LOST_NOTE", "Leases", "RunLease", "default_replica_id"]

log = logging.getLogger("remediator.service.leases")

LEADER = "leader"
"""The leader lease's name."""

LOST_NOTE = "this replica lost the execution's lease (another replica may run it)"
"""Why a run stopped before a mutating step: its lease was not confirmed in time."""


def default_replica_id(port: int | None = None) -> str:
    """REMEDIATOR_REPLICA_ID, else ``<host name>:<port>``: stable across restarts of one
    replica (it takes back its own leases at once), different between two hosts or ports."""
    chosen = os.environ.get(defaults.REPLICA_ID_ENV, "").strip()
    if chosen:
        return chosen
    host = socket.gethostname() or "localhost"
    return f"{host}:{port}" if port is not None else f"{host}:{os.getpid()}"


@dataclass
class RunLease:
    """One execution this replica runs, and the keys (``target:...``) it holds for it."""

    execution_id: int
    keys: tuple[str, ...]
    until: datetime  # the end of the last lease the store confirmed
    gone: bool = False  # lost for good: a renewal said it is no longer ours, or it ran out
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def lost(self, now: datetime) -> bool:
        """True once the run may no longer act: taken by another replica, or not confirmed
        (the database unreachable) until its lease ran out. Once lost, lost for good: the
        run stops, and whoever claims the execution next resumes it."""
        with self._lock:
            self.gone = self.gone or now >= self.until
            return self.gone


class Leases:
    """Leases held by one replica; :meth:`renew` is one round, :meth:`start` runs rounds."""

    def __init__(self, store: Store, replica_id: str, *, candidate: bool = True,
                 clock: Clock = utc_now,
                 lease_s: float = defaults.EXECUTION_LEASE_S,
                 leader_lease_s: float = defaults.LEADER_LEASE_S) -> None:
        self.store = store
        self.replica_id = replica_id
        self.candidate = candidate  # runs for leader (an intake-only replica does not)
        self.clock = clock
        self.lease = timedelta(seconds=lease_s)
        self.leader_lease = timedelta(seconds=leader_lease_s)
        self._leader_until: datetime | None = None
        self._runs: dict[int, RunLease] = {}
        self._lock = threading.Lock()
        # Renewal must not back off past a lease after errors: it retries every round.
        self._loop = BackgroundLoop("leases", self._round, interval_s=self.interval,
                                    error_backoff_max_s=self.interval, log=log)

    @property
    def interval(self) -> float:
        """Seconds between two renewal rounds."""
        shortest = min(self.lease, self.leader_lease).total_seconds()
        return shortest * defaults.LEASE_RENEW_FRACTION

    # -- leader -------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        until = self._leader_until
        return until is not None and self.clock() < until

    def renew_leader(self) -> bool:
        """Take or keep the leader lease; True while this replica leads."""
        if not self.candidate:
            return False
        now = self.clock()
        was = self.is_leader
        try:
            held = self.store.acquire_lease(LEADER, self.replica_id, now + self.leader_lease,
                                            now)
        except Exception as exc:  # the database away: lead until the confirmed end, no more
            log.warning("leader lease not renewed: %s", exc)
            held = None
        if held is not None:
            self._leader_until = now + self.leader_lease if held else None
        if self.is_leader != was:
            log.warning("replica %s %s the leader", self.replica_id,
                        "is now" if self.is_leader else "is no longer")
        return self.is_leader

    def resign(self) -> None:
        """Give the leader lease up (a clean stop): another replica takes it at once."""
        if self._leader_until is None:
            return
        self._leader_until = None
        try:
            self.store.release_lease(LEADER, self.replica_id)
        except Exception as exc:
            log.warning("leader lease not released (it expires by itself): %s", exc)

    # -- executions and their targets -----------------------------------------------------
    def take_keys(self, keys: Sequence[str]) -> bool:
        """Take every key (``target:<name>``...) for a run, or none of them."""
        now = self.clock()
        if any(self.store.lease_holder(key, now) not in (None, self.replica_id)
               for key in keys):
            return False  # a read, not a write: asked every poll for others' live runs
        taken: list[str] = []
        for key in keys:
            if not self.store.acquire_lease(key, self.replica_id, now + self.lease, now):
                self.release_keys(taken)
                return False
            taken.append(key)
        return True

    def release_keys(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                self.store.release_lease(key, self.replica_id)
            except Exception as exc:  # it expires by itself
                log.warning("lease %s not released: %s", key, exc)

    def run_until(self) -> datetime:
        """The end of an execution lease taken now."""
        return self.clock() + self.lease

    def begin(self, execution_id: int, keys: Sequence[str], until: datetime) -> RunLease:
        """Renew this run's leases from now on, until :meth:`end`."""
        run = RunLease(execution_id, tuple(keys), until)
        with self._lock:
            self._runs[execution_id] = run
        return run

    def end(self, run: RunLease) -> None:
        """The run is over (its end stored, or given up): stop renewing, free its keys."""
        with self._lock:  # after a renewal round in flight, never in its middle
            self._runs.pop(run.execution_id, None)
            self.release_keys(run.keys)

    def renew_runs(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            self._renew_run(run)

    def _renew_run(self, run: RunLease) -> None:
        now = self.clock()
        until = now + self.lease
        # Under the lock: end() waits for this round, so a run's keys are never taken again
        # after it released them (the next run on its target may hold them by then).
        with self._lock:
            if run.execution_id not in self._runs:
                return  # it ended: its keys are released
            try:
                ours = self.store.renew_execution_lease(run.execution_id, self.replica_id,
                                                        until)
                ours = ours and all(self.store.acquire_lease(key, self.replica_id, until, now)
                                    for key in run.keys)
            except Exception as exc:  # not confirmed: the run stops once its lease runs out
                log.warning("lease of execution %s not renewed: %s", run.execution_id, exc,
                            extra={"execution_id": run.execution_id})
                return
        if run.lost(now):
            return
        with run._lock:
            if ours:
                run.until = until
                return
            run.gone = True
        log.warning("execution %s is no longer this replica's (%s): it stops before its "
                    "next mutating step", run.execution_id, self.replica_id,
                    extra={"execution_id": run.execution_id})

    # -- the renewal thread ---------------------------------------------------------------
    def renew(self) -> None:
        """One round: the runs' leases first (they guard mutations), then the leader's."""
        self.renew_runs()
        self.renew_leader()

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._loop.stop(timeout)
        self.resign()

    def _round(self) -> None:
        self.renew()
