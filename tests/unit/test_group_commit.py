"""The webhook's group commit: every body stored once, many per transaction under load.

(A leader/follower variant, the first request thread committing for the others, was
measured against this writer thread with make bench-ingest's load: about 8 % fewer alerts/s
at 50 senders and no better p99 at 1 sender, so the writer thread stays.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from remediator.adapters.ingest import GroupCommitWriter
from remediator.core import defaults
from remediator.errors import StoreError
from remediator.store.sqlite import SqliteStore as Store
from tests.support.raw_db import rows


class CountingStore(Store):
    """A real store that counts its transactions and can hold or fail the next ones."""

    def __init__(self, path: Path) -> None:
        self.transactions: list[str] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.fail_next = False
        super().__init__(path)

    def record_inbox(self, bodies: Sequence[bytes]) -> list[int]:
        self.transactions.append(threading.current_thread().name)
        self.entered.set()
        self.hold.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise StoreError("disk full")
        return super().record_inbox(bodies)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    found = CountingStore(tmp_path / "r.db")
    yield found
    found.close()


def stored(store: Store) -> list[bytes]:
    return [bytes(r["body"]) for r in rows(store, "SELECT body FROM inbox ORDER BY id")]


def test_each_body_is_committed_before_submit_returns(store: CountingStore) -> None:
    writer = GroupCommitWriter(store)
    first, second = writer.submit(b"one"), writer.submit(b"two")
    assert second == first + 1
    assert stored(store) == [b"one", b"two"]  # read on another connection: on disk


def test_bodies_queued_during_a_commit_share_the_next_one(store: CountingStore) -> None:
    writer = GroupCommitWriter(store)
    before = len(store.transactions)
    store.hold.clear()
    store.entered.clear()
    ids: dict[int, int] = {}
    leader = threading.Thread(target=lambda: ids.__setitem__(0, writer.submit(b"0")))
    leader.start()
    assert store.entered.wait(5)  # the leader is inside its commit, held
    followers = [threading.Thread(target=lambda n=n: ids.__setitem__(n, writer.submit(
        str(n).encode()))) for n in range(1, 21)]
    for thread in followers:
        thread.start()
    while writer._queue.qsize() < 20:  # all twenty are waiting behind it
        threading.Event().wait(0.01)
    store.hold.set()
    for thread in [leader, *followers]:
        thread.join(10)
    assert sorted(stored(store)) == sorted(str(n).encode() for n in range(21))
    assert sorted(ids.values()) == list(range(min(ids.values()), min(ids.values()) + 21))
    assert len(store.transactions) - before == 2  # the leader's, then one for the twenty


def test_a_failed_commit_fails_its_batch_and_the_next_one_works(store: CountingStore) -> None:
    writer = GroupCommitWriter(store)
    store.fail_next = True
    with pytest.raises(StoreError, match="could not store the payload: disk full"):
        writer.submit(b"lost")
    assert writer.submit(b"kept") > 0
    assert stored(store) == [b"kept"]


def test_a_request_that_times_out_waiting_is_never_stored(
        store: CountingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "INBOX_SUBMIT_TIMEOUT_S", 0.3)
    writer = GroupCommitWriter(store)
    store.hold.clear()
    store.entered.clear()
    outcomes: list[str] = []

    def slow() -> None:
        try:
            writer.submit(b"slow")
            outcomes.append("stored")
        except StoreError:
            outcomes.append("503")  # its commit had begun: stored all the same

    leader = threading.Thread(target=slow)
    leader.start()
    assert store.entered.wait(5)
    with pytest.raises(StoreError, match="did not finish within"):
        writer.submit(b"gave up")  # answered 503 while still queued: Alertmanager resends
    store.hold.set()
    leader.join(10)
    assert outcomes == ["503"]
    writer.close()  # the held commit finishes and the queue drains before we look
    assert stored(store) == [b"slow"]  # the abandoned one was never written


def test_after_close_new_bodies_are_refused(store: CountingStore) -> None:
    writer = GroupCommitWriter(store)
    writer.close()
    with pytest.raises(StoreError, match="closed"):
        writer.submit(b"late")
