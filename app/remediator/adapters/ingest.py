"""Group commit for the webhook: one writer thread, one transaction for many payloads.

Each request thread hands its body to the writer and waits until the transaction holding
it has committed (WAL, synchronous=FULL: on disk), so 202 still means durable. Under load
many payloads share one commit instead of fighting over SQLite's single write lock.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from remediator.errors import StoreError
from remediator.store import Store

__all__ = ["GroupCommitWriter"]

MAX_BATCH = 256
"""Most payloads committed in one transaction."""

SUBMIT_TIMEOUT = 30.0
"""Seconds a request waits for its commit before answering 503 (Alertmanager retries)."""


@dataclass
class _Pending:
    body: bytes
    done: threading.Event = field(default_factory=threading.Event)
    inbox_id: int | None = None
    error: str | None = None
    abandoned: bool = False  # its request gave up (503): do not store it after all


class GroupCommitWriter:
    def __init__(self, store: Store, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="inbox-writer", daemon=True)
        self._thread.start()

    def submit(self, body: bytes) -> int:
        """Store `body` in the inbox; returns its id once committed, else raises StoreError."""
        if self._closed:
            raise StoreError("the inbox writer is closed (shutting down)")
        pending = _Pending(body)
        self._queue.put(pending)
        if not pending.done.wait(SUBMIT_TIMEOUT):
            pending.abandoned = True  # still queued: never stored; mid-commit: a duplicate
            raise StoreError(f"inbox commit did not finish within {SUBMIT_TIMEOUT:.0f}s")
        if pending.error is not None or pending.inbox_id is None:
            raise StoreError(pending.error or "inbox commit failed")
        return pending.inbox_id

    def close(self) -> None:
        """Refuse new payloads; those already queued are committed first."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(5)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._commit(batch)
                    return
                batch.append(item)
            self._commit(batch)

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
