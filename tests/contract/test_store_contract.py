"""The store contract: what every implementation of remediator.store.api.Store must do.

Runs against each backend of conftest.BACKENDS (SQLite today). Only the API is used here:
no SQL, no file, no backend detail; ids are ints, timestamps the ISO-8601 UTC text of
remediator.store.iso, moments passed in are aware datetimes.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from remediator.core.alerts import Alert, parse_alert
from remediator.store import MAX_ROW_ID, IntakeBatch, Store, parse_iso
from remediator.store.records import (
    DeliveryStatus,
    Execution,
    ExecutionState,
    InboxItem,
    IncidentStatus,
    NewNotification,
    NotificationKind,
    NotificationStatus,
    StepRecord,
    StepStatus,
)
from tests.contract.conftest import StoreFactory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def alert(fingerprint: str = "f1", status: str = "firing", service: str = "app",
          starts: str = "2026-03-01T11:59:00Z") -> Alert:
    return parse_alert({
        "status": status, "labels": {"alertname": "ModelDown", "service": service},
        "annotations": {"summary": "down"}, "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph",
        "fingerprint": fingerprint})


def intake(store: Store, *alerts: Alert, playbook: str | None = "pb",
           target: str = "app-prod") -> list[tuple[int, int | None]]:
    """Each alert as intake records a new one: an incident, and an execution if `playbook`."""
    (inbox_id,) = store.record_inbox([b"{}"])

    def handle(batch: IntakeBatch, item: InboxItem) -> list[tuple[int, int | None]]:
        out = []
        for each in alerts:
            incident_id = batch.add_incident(each, target, None)
            execution_id = batch.add_execution(incident_id, playbook, target, each) \
                if playbook else None
            out.append((incident_id, execution_id))
        return out

    (item,) = [i for i in store.unprocessed_inbox() if i.id == inbox_id]
    return store.process_inbox([item], handle)


def step(step_id: str, status: str = "ok", **more: Any) -> StepRecord:
    return StepRecord.from_dict({"id": step_id, "action": "docker.logs", "phase": "diagnose",
                                 "status": status, **more})


def draft(key: str = "k1", kind: str = "trigger", incident_id: int | None = None,
          channels: tuple[tuple[str, str], ...] = (("slack", "slack"), ("pd", "pagerduty")),
          **more: Any) -> NewNotification:
    return NewNotification(incident_id, NotificationKind(kind), key, "ops", "page", "critical",
                           "rule-a", "because", {"title": "t", "text": "x"}, channels, **more)


def is_iso(text: str | None) -> bool:
    return text is not None and text.endswith("Z") and parse_iso(text).tzinfo is not None


# -- inbox ---------------------------------------------------------------------------------
def test_inbox_keeps_bodies_in_order_until_processed(store: Store) -> None:
    ids = [*store.record_inbox([b"one", b"two"]), store.add_inbox(b"three")]
    assert all(isinstance(i, int) and 0 < i <= MAX_ROW_ID for i in ids) and ids == sorted(ids)
    items = store.unprocessed_inbox()
    assert [(i.id, i.body) for i in items] == list(zip(ids, [b"one", b"two", b"three"],
                                                       strict=True))
    assert all(is_iso(i.received_at) for i in items) and store.inbox_depth() == 3
    assert store.process_inbox(items[:2], lambda batch, item: [item.id]) == ids[:2]
    assert [i.id for i in store.unprocessed_inbox()] == ids[2:] and store.inbox_depth() == 1
    assert [i.state.value for i in store.inbox()] == ["processed", "processed", "pending"]


def test_a_large_batch_of_bodies_gets_ids_in_their_order(store: Store) -> None:
    bodies = [f"body {n}".encode() for n in range(1203)]  # more than one statement's worth
    ids = store.record_inbox(bodies)
    assert len(ids) == len(set(ids)) == 1203 and ids == sorted(ids)
    assert [(i.id, i.body) for i in store.unprocessed_inbox(2000)] == list(
        zip(ids, bodies, strict=True))


def test_process_inbox_is_one_transaction(store: Store) -> None:
    store.record_inbox([b"a", b"b"])
    items = store.unprocessed_inbox()

    def handle(batch: IntakeBatch, item: InboxItem) -> list[int]:
        batch.add_incident(alert(f"fp{item.id}"), None, None)
        if item.body == b"b":
            raise RuntimeError("the second breaks")
        return [item.id]

    with pytest.raises(RuntimeError):
        store.process_inbox(items, handle)
    assert store.inbox_depth() == 2 and store.incidents() == []  # nothing of it is kept


def test_an_unprocessable_item_becomes_a_dead_letter(store: Store) -> None:
    store.record_inbox([b"\xffnot json"])
    (item,) = store.unprocessed_inbox()
    letter = store.dead_letter_inbox(item, "intake failed: bad")
    store.add_dead_letter(b"refused", "not JSON", "text/plain")
    assert store.inbox_depth() == 0
    newest, oldest = store.dead_letters()
    assert (oldest.id, oldest.reason, oldest.body) == (letter, "intake failed: bad",
                                                       b"\xffnot json")
    assert (newest.reason, newest.content_type, newest.view()["body"]) == (
        "not JSON", "text/plain", "refused")


# -- incidents -----------------------------------------------------------------------------
def test_an_incident_reads_back_with_its_parsed_alert_fields(store: Store) -> None:
    ((incident_id, execution_id),) = intake(store, alert())
    incident = store.incident(incident_id)
    assert incident is not None and incident.status is IncidentStatus.FIRING
    assert (incident.fingerprint, incident.alertname, dict(incident.labels),
            incident.starts_at, incident.target, incident.notices) == (
        "f1", "ModelDown", {"alertname": "ModelDown", "service": "app"},
        alert().to_dict()["startsAt"], "app-prod", 1)
    assert incident.incident_key == alert().incident_key
    assert is_iso(incident.created_at) and incident.claimed_by is None
    assert store.incident(incident_id + 1000) is None
    assert incident["status"] == "firing" and incident.view()["startsAt"] == incident.starts_at
    execution = store.execution(execution_id or 0)
    assert execution is not None and execution.alert == alert()  # typed, as intake parsed it


def test_intake_batch_finds_touches_and_reopens_incidents(store: Store) -> None:
    ((first, _),) = intake(store, alert())
    store.record_inbox([b"{}"])
    refire = alert(starts="2026-03-01T13:00:00Z")

    def touch(batch: IntakeBatch, item: InboxItem) -> list[int]:
        found = batch.incident_by_key(alert().incident_key)
        assert found is not None and found.id == first
        batch.touch_incident(first, IncidentStatus.RESOLVED)
        return [first]

    store.process_inbox(store.unprocessed_inbox(), touch)
    resolved = store.incident(first)
    assert resolved is not None and resolved.status is IncidentStatus.RESOLVED
    assert resolved.notices == 2 and is_iso(resolved.resolved_at)
    store.finish_execution(1, ExecutionState.FINISHED, "success", None, None, [],
                           fixed_incident=first)

    def reopen(batch: IntakeBatch, item: InboxItem) -> list[int]:
        assert batch.incident_by_key(refire.incident_key) is None
        previous = batch.reopenable("f1")
        assert previous is not None and previous.id == first
        batch.reopen(first, refire.incident_key, "budget exhausted: test")
        return []

    store.record_inbox([b"{}"])
    store.process_inbox(store.unprocessed_inbox(), reopen)
    again = store.incident(first)
    assert again is not None and (again.status, again.reopened, again.fixed_at,
                                  again.resolved_at, again.note) == (
        IncidentStatus.FIRING, 1, None, None, "budget exhausted: test")
    assert store.incident_ids_for_keys([refire.incident_key, "unknown@x"]) == {first}


def test_runs_since_counts_real_runs_of_alerts_only(store: Store) -> None:
    ((_, execution_id),) = intake(store, alert())
    intake(store, alert("f2"), playbook="other")
    store.add_replay(execution_id or 0, dry_run=False)  # a replay is not an alert's run
    store.record_inbox([b"{}"])
    counts: list[int] = []

    def count(batch: IntakeBatch, item: InboxItem) -> list[int]:
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        counts.extend([batch.runs_since("app-prod", hour_ago),
                       batch.runs_since("app-prod", hour_ago, "pb"),
                       batch.runs_since("elsewhere", hour_ago),
                       batch.runs_since("app-prod", datetime.now(UTC) + timedelta(hours=1))])
        return []

    store.process_inbox(store.unprocessed_inbox(), count)
    assert counts == [2, 1, 0, 0]


def test_claiming_an_incident_cancels_its_pending_executions_once(store: Store) -> None:
    ((incident_id, execution_id),) = intake(store, alert())
    claim = store.claim_incident(incident_id, "alice", T0)
    assert claim is not None and claim.new and claim.cancelled == (execution_id,)
    assert claim.claimed_at == "2026-03-01T12:00:00.000000Z"
    cancelled = store.execution(execution_id or 0)
    assert cancelled is not None and (cancelled.state, cancelled.outcome) == (
        ExecutionState.CANCELLED, "aborted")
    other = store.claim_incident(incident_id, "bob", T0 + timedelta(minutes=1))
    assert other is not None and (other.claimed_by, other.new) == ("alice", False)
    assert store.claim_incident(999, "alice", T0) is None
    incident = store.incident(incident_id)
    assert incident is not None and incident.claimed_by == "alice"


def test_fixed_and_resolved_incidents_close_after_their_window(store: Store) -> None:
    ((incident_id, _),) = intake(store, alert())
    store.mark_fixed(incident_id)
    assert store.closable(datetime.now(UTC) + timedelta(hours=1)) == []  # still firing
    store.record_inbox([b"{}"])
    store.process_inbox(store.unprocessed_inbox(), lambda batch, item: [
        batch.touch_incident(incident_id, IncidentStatus.RESOLVED)])
    assert store.closable(datetime.now(UTC) - timedelta(hours=1)) == []  # window not over
    (due,) = store.closable(datetime.now(UTC) + timedelta(hours=1))
    assert due.id == incident_id
    store.close_incident(incident_id)
    closed = store.incident(incident_id)
    assert closed is not None and is_iso(closed.closed_at)
    assert store.closable(datetime.now(UTC) + timedelta(hours=1)) == []


def test_firing_incidents_marks_and_the_change_token(store: Store) -> None:
    before = store.change_token()
    ((first, _), (second, _)) = intake(store, alert("f1"), alert("f2"))
    assert store.change_token() != before
    marks = store.firing_marks()
    assert list(marks) == [first, second]
    assert [i.id for i in store.firing_incidents()] == [first, second]
    assert [i.mark for i in store.incidents_by_ids([second, first])] == [
        marks[first], marks[second]]
    token = store.change_token()
    store.claim_incident(first, "alice", datetime.now(UTC) + timedelta(seconds=1))
    assert store.firing_marks()[first] != marks[first] and store.change_token() != token


# -- executions ----------------------------------------------------------------------------
def test_an_execution_is_claimed_once_and_keeps_its_first_mode(store: Store) -> None:
    ((_, execution_id),) = intake(store, alert())
    assert execution_id is not None
    (pending,) = store.executions_in_state(ExecutionState.PENDING)
    assert isinstance(pending, Execution) and pending.alert == alert()
    assert store.claim_execution(execution_id, True, from_state=pending.state) is True
    assert store.claim_execution(execution_id, False) is False  # not pending any more
    # A resume after a crash claims it from running, and keeps the mode of its first start.
    assert store.claim_execution(execution_id, False, from_state="running") is True
    running = store.execution(execution_id)
    assert running is not None and running.state is ExecutionState.RUNNING
    assert running.dry_run is True and is_iso(running.started_at)
    assert store.started_among([1, 2]) == set()  # a dry run is not a real start


def test_a_running_execution_is_taken_over_only_once_its_lease_expired(
        store: Store, reopen: StoreFactory) -> None:
    ((_, execution_id),) = intake(store, alert())
    assert execution_id is not None
    other = reopen()  # another replica on the same store
    lease = T0 + timedelta(seconds=30)
    assert store.claim_execution(execution_id, False, owner="a", lease_until=lease, now=T0)
    assert not other.claim_execution(execution_id, False, owner="b", now=T0)  # not pending
    # A takeover (resume) from running: refused while a's lease is live ...
    for moment in (T0, lease - timedelta(microseconds=1)):
        assert not other.claim_execution(execution_id, from_state="running", owner="b",
                                          lease_until=moment + timedelta(seconds=30),
                                          now=moment)
    # ... but a may resume its own (a restart), and renew it while it runs.
    assert store.claim_execution(execution_id, from_state="running", owner="a",
                                 lease_until=lease, now=T0)
    assert store.renew_execution_lease(execution_id, "a", lease + timedelta(seconds=30))
    assert not other.renew_execution_lease(execution_id, "b", lease)  # not b's
    expired = lease + timedelta(seconds=30)
    assert not other.claim_execution(execution_id, from_state="running", owner="b",
                                      lease_until=expired + timedelta(seconds=30),
                                      now=expired - timedelta(seconds=1))
    assert other.claim_execution(execution_id, from_state="running", owner="b",
                                 lease_until=expired + timedelta(seconds=30), now=expired)
    # a lost it: its renewal fails (it must stop), and it cannot take it back while b's
    # lease is live.
    assert not store.renew_execution_lease(execution_id, "a", expired + timedelta(minutes=1))
    assert not store.claim_execution(execution_id, from_state="running", owner="a",
                                     lease_until=expired + timedelta(minutes=1), now=expired)
    assert other.renew_execution_lease(execution_id, "b", expired + timedelta(minutes=1))
    store.finish_execution(execution_id, ExecutionState.FINISHED, "success", None, None, [])
    assert not other.renew_execution_lease(execution_id, "b", expired + timedelta(minutes=2))
    finished = store.execution(execution_id)
    assert finished is not None and finished.state is ExecutionState.FINISHED


def test_of_two_owners_racing_for_an_execution_one_wins(store: Store,
                                                        reopen: StoreFactory) -> None:
    ids = [execution for _, execution in intake(store, *(alert(f"r{n}") for n in range(20)))]
    other = reopen()
    won: dict[str, list[int]] = {"a": [], "b": []}

    def claim(each: Store, owner: str) -> None:
        for execution_id in ids:
            if each.claim_execution(execution_id or 0, owner=owner,
                                    lease_until=T0 + timedelta(minutes=1), now=T0):
                won[owner].append(execution_id or 0)

    racers = [threading.Thread(target=claim, args=(store, "a")),
              threading.Thread(target=claim, args=(other, "b"))]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(won["a"] + won["b"]) == sorted(execution or 0 for execution in ids)


def test_a_named_lease_has_one_holder_until_it_expires_or_is_released(
        store: Store, reopen: StoreFactory) -> None:
    other = reopen()
    until = T0 + timedelta(seconds=15)
    assert store.lease_holder("leader", T0) is None
    assert store.acquire_lease("leader", "a", until, T0)
    assert not other.acquire_lease("leader", "b", until, T0)
    assert other.lease_holder("leader", T0) == "a"
    assert store.acquire_lease("leader", "a", until + timedelta(seconds=15), until)  # renew
    assert not other.acquire_lease("leader", "b", until + timedelta(seconds=30), until)
    assert store.acquire_lease("target:app-prod", "a", until, T0)  # names are independent
    assert not other.acquire_lease("target:app-prod", "b", until, T0)
    later = until + timedelta(seconds=15)  # a stopped renewing: b takes over at expiry
    assert other.lease_holder("leader", later) is None
    assert other.acquire_lease("leader", "b", later + timedelta(seconds=15), later)
    assert store.lease_holder("leader", later) == "b"
    assert not store.acquire_lease("leader", "a", later + timedelta(seconds=15), later)
    store.release_lease("leader", "a")  # not a's: nothing happens
    assert store.lease_holder("leader", later) == "b"
    other.release_lease("leader", "b")
    assert store.lease_holder("leader", later) is None
    assert store.acquire_lease("leader", "a", later + timedelta(seconds=15), later)


def test_of_owners_racing_for_a_named_lease_one_wins(store: Store,
                                                     reopen: StoreFactory) -> None:
    stores = [store, reopen(), reopen()]
    winners: list[str] = []
    start = threading.Barrier(len(stores))

    def race(each: Store, owner: str) -> None:
        start.wait()
        if each.acquire_lease("leader", owner, T0 + timedelta(seconds=15), T0):
            winners.append(owner)

    racers = [threading.Thread(target=race, args=(each, f"r{n}"))
              for n, each in enumerate(stores)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(winners) == 1 and store.lease_holder("leader", T0) == winners[0]


def test_steps_are_upserted_and_read_in_order(store: Store) -> None:
    ((_, execution_id),) = intake(store, alert())
    assert execution_id is not None
    store.record_step(execution_id, 1, step("fix", "running"))
    store.record_step(execution_id, 0, step("logs", outputs={"output": "boom"}, attempts=1))
    store.record_step(execution_id, 1, step("fix", "failed", error="no", duration_s=0.5))
    steps = store.steps(execution_id)
    assert [(s.id, s.status, s.attempts) for s in steps] == [
        ("logs", StepStatus.OK, 1), ("fix", StepStatus.FAILED, 0)]
    assert dict(steps[0].outputs) == {"output": "boom"} and steps[1].error == "no"
    execution = store.execution(execution_id)
    assert execution is not None and execution.steps == tuple(steps)


def test_long_step_outputs_are_capped(store: Store) -> None:
    ((_, execution_id),) = intake(store, alert())
    store.record_step(execution_id or 0, 0, step("logs", outputs={"output": "x" * 200_000}))
    (stored,) = store.steps(execution_id or 0)
    assert len(stored.outputs["output"]) < 200_000 and stored.outputs["_truncated"]


def test_finishing_commits_the_end_the_fix_and_the_escalation_summary(store: Store) -> None:
    ((incident_id, execution_id),) = intake(store, alert())
    assert execution_id is not None
    store.claim_execution(execution_id)
    summary = {"playbook": "pb", "outcome": "success", "steps": []}
    store.record_step(execution_id, 0, step("logs"))
    returned = store.finish_execution(
        execution_id, ExecutionState.FINISHED, "success", "oom", None,
        [{"team": "ops", "level": "page", "reason": "r"}], pending=summary,
        fixed_incident=incident_id)
    done = store.execution(execution_id)
    assert returned == done and [s.id for s in returned.steps] == ["logs"]  # as stored
    assert done is not None and (done.state, done.outcome, done.scenario) == (
        ExecutionState.FINISHED, "success", "oom")
    assert [dict(e) for e in done.escalations] == [{"team": "ops", "level": "page",
                                                    "reason": "r"}]
    assert is_iso(done.finished_at)
    incident = store.incident(incident_id)
    assert incident is not None and is_iso(incident.fixed_at)
    assert store.pending_escalations() == [(execution_id, summary)]
    assert store.escalation_pending(execution_id)
    store.escalation_handled(execution_id)
    assert store.pending_escalations() == [] and not store.escalation_pending(execution_id)
    assert store.latest_finished([incident_id]) == {incident_id: execution_id}
    assert store.started_among([incident_id]) == {incident_id}
    assert store.first_playbook(incident_id) == "pb"
    latest = store.latest_finished_execution(incident_id)
    assert latest is not None and latest.id == execution_id
    assert [e.id for e in store.executions_for(incident_id)] == [execution_id]


def test_a_replay_repeats_an_execution(store: Store) -> None:
    ((incident_id, execution_id),) = intake(store, alert())
    replay = store.add_replay(execution_id or 0, dry_run=True)
    assert replay is not None and store.add_replay(9999, dry_run=True) is None
    found = store.execution(replay)
    assert found is not None and (found.replay_of, found.incident_id, found.playbook,
                                  found.alert, found.dry_run, found.state) == (
        execution_id, incident_id, "pb", alert(), True, ExecutionState.PENDING)
    assert [e.id for e in store.executions()] == [replay, execution_id]  # newest first


def test_prune_forgets_old_finished_runs_and_processed_payloads(store: Store) -> None:
    ((incident_id, execution_id),) = intake(store, alert())
    ((_, running),) = intake(store, alert("f2"))
    store.finish_execution(execution_id or 0, ExecutionState.FINISHED, "success", None, None,
                           [])
    store.record_step(execution_id or 0, 0, step("logs"))
    assert store.prune(datetime.now(UTC) - timedelta(days=1)) == 0
    assert store.prune(datetime.now(UTC) + timedelta(days=1)) == 1
    assert store.execution(execution_id or 0) is None and store.steps(execution_id or 0) == []
    assert store.execution(running or 0) is not None  # unfinished: kept
    assert store.incident(incident_id) is not None and store.inbox() == []


# -- notifications -------------------------------------------------------------------------
def test_a_notification_is_accepted_once_per_key_and_kind(store: Store) -> None:
    first = store.enqueue_notification(draft(), T0)
    assert isinstance(first, int)
    assert store.enqueue_notification(draft(), T0) is None
    assert store.notification_exists("k1", "trigger")
    assert not store.notification_exists("k1", NotificationKind.RESOLVE)
    assert store.outbox_depth() == 2 and store.next_delivery_at() == T0
    (stored,) = store.notifications()
    assert (stored.status, stored.kind, dict(stored.message), stored.created_at) == (
        NotificationStatus.PENDING, NotificationKind.TRIGGER, {"title": "t", "text": "x"},
        "2026-03-01T12:00:00.000000Z")
    assert [(d.channel, d.status) for d in stored.deliveries] == [
        ("slack", DeliveryStatus.PENDING), ("pd", DeliveryStatus.PENDING)]


def test_a_notification_without_channels_fails_at_once(store: Store) -> None:
    store.enqueue_notification(draft(channels=()), T0)
    (stored,) = store.notifications()
    assert stored.status is NotificationStatus.FAILED and "no channel" in (
        stored.status_reason or "")
    assert store.outbox_depth() == 0


def test_due_deliveries_are_claimed_one_per_idle_channel(store: Store) -> None:
    first = store.enqueue_notification(draft("k1"), T0)
    store.enqueue_notification(draft("k2"), T0)
    assert store.claim_due_deliveries(T0 - timedelta(seconds=1)) == []  # not due yet
    due = store.claim_due_deliveries(T0, busy=["pd"])
    assert [(d.notification_id, d.channel) for d in due] == [(first, "slack")]
    assert due[0].message == {"title": "t", "text": "x"} and due[0].kind.value == "trigger"
    second = store.claim_due_deliveries(T0)  # the next head of each channel's queue
    assert [(d.notification_id, d.channel) for d in second] == [(first, "pd"), (2, "slack")]
    assert store.outbox_depth() == 4  # sending still owes its outcome
    assert store.recover_interrupted_deliveries(T0) == 3  # sending -> due again
    assert len(store.claim_due_deliveries(T0)) == 2


def test_a_claimed_delivery_is_not_claimed_by_another_owner_until_it_expires(
        store: Store, reopen: StoreFactory) -> None:
    other = reopen()
    store.enqueue_notification(draft("k1", channels=(("slack", "slack"),)), T0)
    claim_until = T0 + timedelta(seconds=60)
    (mine,) = store.claim_due_deliveries(T0, owner="a", until=claim_until)
    assert other.claim_due_deliveries(T0, owner="b", until=claim_until) == []
    # b's recovery leaves a's live claim alone, at any moment before it expires
    assert other.recover_interrupted_deliveries(T0, owner="b") == 0
    assert other.recover_interrupted_deliveries(claim_until - timedelta(seconds=1)) == 0
    assert other.claim_due_deliveries(claim_until, owner="b") == []
    # once a's claim expired (a died mid-send), it is due again and b sends it
    assert other.recover_interrupted_deliveries(claim_until, owner="b") == 1
    (taken,) = other.claim_due_deliveries(claim_until, owner="b",
                                          until=claim_until + timedelta(seconds=60))
    assert taken.id == mine.id and store.claim_due_deliveries(claim_until, owner="a") == []


def test_a_channel_sends_one_at_a_time_across_owners(store: Store,
                                                     reopen: StoreFactory) -> None:
    other = reopen()
    trigger = store.enqueue_notification(draft("k1", channels=(("slack", "slack"),)), T0)
    resolve = store.enqueue_notification(draft("k1", kind="resolve",
                                               channels=(("slack", "slack"),)), T0)
    (sending,) = store.claim_due_deliveries(T0, owner="a", until=T0 + timedelta(minutes=1))
    assert sending.notification_id == trigger
    # The resolve is due, but the channel is busy on a: b must not send it first.
    assert other.claim_due_deliveries(T0, owner="b", until=T0 + timedelta(minutes=1)) == []
    store.record_attempt(sending.id, trigger or 0, DeliveryStatus.DELIVERED, tried=True,
                         now=T0)
    (next_one,) = other.claim_due_deliveries(T0, owner="b", until=T0 + timedelta(minutes=1))
    assert next_one.notification_id == resolve


def test_a_restarted_owner_takes_back_its_own_claims_at_once(store: Store,
                                                             reopen: StoreFactory) -> None:
    store.enqueue_notification(draft("k1"), T0)
    (first, second) = store.claim_due_deliveries(T0, owner="a",
                                                 until=T0 + timedelta(minutes=5))
    store.enqueue_notification(draft("k2", channels=(("mail", "email"),)), T0)
    (theirs,) = reopen().claim_due_deliveries(T0, owner="b", until=T0 + timedelta(minutes=5))
    restarted = reopen()
    assert restarted.recover_interrupted_deliveries(T0, owner="a") == 2  # a's, not b's
    again = restarted.claim_due_deliveries(T0, owner="a", until=T0 + timedelta(minutes=5))
    assert sorted(d.id for d in again) == sorted([first.id, second.id])
    assert all(d.id != theirs.id for d in again)
    assert restarted.outbox_depth() == 3


def test_of_two_owners_racing_for_deliveries_each_is_claimed_once(
        store: Store, reopen: StoreFactory) -> None:
    for n in range(10):
        store.enqueue_notification(draft(f"k{n}", channels=tuple(
            (f"c{c}", "slack") for c in range(4))), T0)
    other = reopen()
    claimed: list[int] = []

    def drain(each: Store, owner: str) -> None:
        for _ in range(30):
            for due in each.claim_due_deliveries(T0, owner=owner,
                                                 until=T0 + timedelta(minutes=1)):
                claimed.append(due.id)
                each.record_attempt(due.id, due.notification_id, DeliveryStatus.DELIVERED,
                                    tried=True, now=T0)

    racers = [threading.Thread(target=drain, args=(each, owner))
              for each, owner in ((store, "a"), (other, "b"))]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(claimed) == len(set(claimed)) == 40 and store.outbox_depth() == 0


def test_attempts_settle_the_notification(store: Store) -> None:
    notification = store.enqueue_notification(draft(), T0) or 0
    slack, pd = sorted(store.claim_due_deliveries(T0), key=lambda d: d.channel)[::-1]
    store.record_attempt(slack.id, notification, DeliveryStatus.RETRY, tried=True, now=T0,
                         next_attempt_at=T0 + timedelta(seconds=30), error="503")
    store.record_attempt(pd.id, notification, DeliveryStatus.FAILED, tried=True, now=T0,
                         error="400 bad key")
    (stored,) = store.notifications()
    assert stored.status is NotificationStatus.PENDING  # slack still owes an attempt
    assert store.next_delivery_at() == T0 + timedelta(seconds=30)
    (again,) = store.claim_due_deliveries(T0 + timedelta(seconds=30))
    store.record_attempt(again.id, notification, DeliveryStatus.DELIVERED, tried=True,
                         now=T0 + timedelta(seconds=31), detail="ok")
    (stored,) = store.notifications()
    assert stored.status is NotificationStatus.DELIVERED
    assert stored.status_reason == "pd: failed (400 bad key)"
    by_channel = {d.channel: d for d in stored.deliveries}
    assert (by_channel["slack"].attempts, by_channel["slack"].last_error,
            by_channel["slack"].delivered_at) == (2, "503", "2026-03-01T12:00:31.000000Z")
    delivered = store.delivery(notification, "slack")
    assert delivered is not None and delivered.status is DeliveryStatus.DELIVERED
    assert store.live_channels(notification) == [("slack", "slack")]
    assert store.outbox_depth() == 0 and store.next_delivery_at() is None


def test_skipped_everywhere_is_skipped_and_postponed_is_due_later(store: Store) -> None:
    notification = store.enqueue_notification(draft(channels=(("slack", "slack"),)), T0) or 0
    (due,) = store.claim_due_deliveries(T0)
    store.postpone_delivery(due.id, T0 + timedelta(minutes=5), T0)
    assert store.claim_due_deliveries(T0 + timedelta(minutes=1)) == []
    (due,) = store.claim_due_deliveries(T0 + timedelta(minutes=5))
    store.record_attempt(due.id, notification, DeliveryStatus.SKIPPED, tried=False, now=T0)
    (stored,) = store.notifications()
    assert stored.status is NotificationStatus.SKIPPED and stored.deliveries[0].attempts == 0


def test_triggers_of_resolved_incidents_await_their_resolve(store: Store) -> None:
    ((incident_id, _),) = intake(store, alert())
    trigger = store.enqueue_notification(draft(incident_id=incident_id, criteria=("a",)),
                                         T0) or 0
    assert store.triggers_to_resolve() == []  # still firing
    store.record_inbox([b"{}"])
    store.process_inbox(store.unprocessed_inbox(), lambda batch, item: [
        batch.touch_incident(incident_id, IncidentStatus.RESOLVED)])
    (waiting,) = store.triggers_to_resolve()
    assert (waiting.id, waiting.criteria) == (trigger, ("a",))
    store.enqueue_notification(draft(kind="update", incident_id=incident_id, key="k1#b",
                                     trigger_id=trigger), T0)
    assert store.trigger_criteria("k1") == (trigger, {"a", "rule-a"})
    assert store.trigger_criteria("nope") is None
    store.enqueue_notification(draft(kind="resolve", incident_id=incident_id,
                                     trigger_id=trigger), T0)
    assert store.triggers_to_resolve() == []


# -- settings and the rest -------------------------------------------------------------------
def test_settings_instance_id_and_last_known_good_persist(store: Store,
                                                          reopen: StoreFactory) -> None:
    assert store.get_setting("paused", "0") == "0"
    store.set_setting("paused", "1")
    store.set_setting("paused", "0")
    store.record_last_known_good("app-prod", "sha256:1", {"env": ["A=1"]})
    identity = store.instance_id
    assert len(identity) == 8 and store.ping() and store.schema_version() >= 4
    again = reopen()
    assert again.get_setting("paused") == "0" and again.instance_id == identity
    record = again.last_known_good_record("app-prod")
    assert record is not None and (record.image, dict(record.config)) == (
        "sha256:1", {"env": ["A=1"]})
    assert again.last_known_good("app-prod") == {"image": "sha256:1", "env": ["A=1"],
                                                 "recorded_at": record.recorded_at}
    assert again.last_known_good("other") is None


def test_a_commit_is_seen_by_another_opening_of_the_store(store: Store,
                                                          reopen: StoreFactory) -> None:
    (inbox_id,) = store.record_inbox([b"durable"])
    assert [i.id for i in reopen().unprocessed_inbox()] == [inbox_id]


def test_counts(store: Store) -> None:
    intake(store, alert())
    assert (store.count("incidents"), store.count("executions"), store.count("inbox")) == (
        1, 1, 1)
    with pytest.raises(ValueError, match="cannot count"):
        store.count("incidents; DROP TABLE x")


def test_a_replica_that_lost_the_lease_cannot_write_steps_or_the_end(
        store: Store, reopen: StoreFactory) -> None:
    # a checked its lease, then stalled past it; b took the execution over. a's late
    # writes must not overwrite b's step or end b's run: the store checks the owner.
    ((_, execution_id),) = intake(store, alert())
    assert execution_id is not None
    other = reopen()
    lease = T0 + timedelta(seconds=15)
    assert store.claim_execution(execution_id, False, owner="a", lease_until=lease, now=T0)
    assert store.record_step(execution_id, 0, step("logs", "running"), owner="a")
    assert other.claim_execution(execution_id, from_state="running", owner="b",
                                 lease_until=lease + timedelta(seconds=30), now=lease)
    assert other.record_step(execution_id, 0, step("logs", outputs={"output": "b's"}),
                             owner="b")
    assert not store.record_step(execution_id, 0, step("logs", "failed", error="late"),
                                 owner="a")
    assert not store.record_step(execution_id, 1, step("fix", "running"), owner="a")
    late = store.finish_execution(execution_id, ExecutionState.FINISHED, "failed", None,
                                  "late", [], fixed_incident=None, owner="a")
    assert late is None
    running = store.execution(execution_id)
    assert running is not None and running.state is ExecutionState.RUNNING
    assert [(s.id, s.status, dict(s.outputs)) for s in running.steps] == [
        ("logs", StepStatus.OK, {"output": "b's"})]
    done = other.finish_execution(execution_id, ExecutionState.FINISHED, "success", None,
                                  None, [], owner="b")
    assert done is not None and done.state is ExecutionState.FINISHED
    assert done.outcome == "success"
