"""Group commit for the webhook: one writer thread, one transaction for many payloads.

Each request thread hands its body to the writer and waits until the transaction holding
it has committed (WAL, synchronous=FULL: on disk), so 202 still means durable. Under load
many payloads share one commit instead of fighting over SQLite's single write lock.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from remediator.background import BackgroundLoop
from remediator.core import defaults
from remediator.errors import StoreError
from remediator.metrics import ServiceMetrics
from remediator.store import Store

__all__ = ["GroupCommitWriter"]


@dataclass
class _Pending:
    body: bytes
    done: threading.Event = field(default_factory=threading.Event)
    inbox_id: int | None = None
    error: str | None = None
    abandoned: bool = False  # its request gave up (503): do not store it after all


class GroupCommitWriter:
    def __init__(self, store: Store, max_batch: int = defaults.INBOX_BATCH_MAX_PAYLOADS,
                 metrics: ServiceMetrics | None = None) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._closed = False
        # Woken by every submit; closing commits what is queued first (the final round).
        self._loop = BackgroundLoop("inbox-writer", self._round,
                                    interval_s=defaults.INBOX_WRITER_IDLE_S, final_tick=True,
                                    metrics=metrics)
        self._loop.start()

    def submit(self, body: bytes) -> int:
        """Store `body` in the inbox; returns its id once committed, else raises StoreError."""
        if self._closed:
            raise StoreError("the inbox writer is closed (shutting down)")
        pending = _Pending(body)
        self._queue.put(pending)
        self._loop.wake()
        if not pending.done.wait(defaults.INBOX_SUBMIT_TIMEOUT_S):
            pending.abandoned = True  # still queued: never stored; mid-commit: a duplicate
            raise StoreError("inbox commit did not finish within "
                             f"{defaults.INBOX_SUBMIT_TIMEOUT_S:.0f}s")
        if pending.error is not None or pending.inbox_id is None:
            raise StoreError(pending.error or "inbox commit failed")
        return pending.inbox_id

    def close(self) -> None:
        """Refuse new payloads; those already queued are committed first."""
        self._closed = True
        self._loop.stop(5)

    def _round(self) -> float | None:
        """Commit the next batch (every batch, when closing); go again at once if more wait."""
        while batch := self._next_batch():
            self._commit(batch)
            if not self._loop.stopping:
                break
        return None if self._queue.empty() else 0.0

    def _next_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _commit(self, batch: list[_Pending]) -> None:
        batch = [item for item in batch if not item.abandoned]
        try:
            ids = self.store.record_inbox([item.body for item in batch])
            for item, inbox_id in zip(batch, ids, strict=True):
                item.inbox_id = inbox_id
        except Exception as exc:  # every waiter must hear about it, whatever it was
            for item in batch:
                item.inbox_id, item.error = None, f"could not store the payload: {exc}"
        for item in batch:
            item.done.set()
