"""Decides who is told, when: the escalation policy driven by executions and the clock.

Three things put notifications into the outbox:

- an execution ends: the playbook's explicit requests (``notify`` steps, ``on_failure:
  escalate``) and the policy's rules over the facts the execution established, plus an
  info notice to the chat channels (fixed, or gave up). The run's summary is committed
  with its end; the worker's ``on_finished`` hook handles it at once, and the timer picks
  up any a crash or an error left (nothing is lost between the two commits);
- the timer: every open incident is evaluated whenever the store changed and exactly when
  the policy says a time-based rule will next hold (``next_due``), so "down for 10
  minutes" fires at 10:00 without a new alert;
- an incident resolving: a resolve notice for every trigger that reached someone, with
  the same dedup key (PagerDuty closes the alert it opened).

Claimed incidents are left alone; the clock is injectable so tests need not wait.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from remediator.adapters.notifiers import HttpTransport, Message, MessageKind, render_message
from remediator.background import BackgroundLoop
from remediator.core import defaults
from remediator.core.clock import Clock, utc_now
from remediator.core.escalation_channels import SEVERITIES, TeamConfig
from remediator.core.escalation_eval import Escalation, EscalationPolicy, namespaced
from remediator.core.results import EscalationRequest, ExecutionResult, Outcome
from remediator.errors import ConfigError, TemplateError
from remediator.escalation.claim import ClaimResult, claim_incident
from remediator.escalation.dispatcher import Dispatcher
from remediator.escalation.facts import (
    Fleet,
    fleet,
    incident_facts,
    incident_identity,
    message_context,
)
from remediator.escalation.outbox import Draft, Outbox
from remediator.metrics import ServiceMetrics
from remediator.store import Store
from remediator.store.records import Execution, Incident, IncidentStatus, Notification

__all__ = ["CHAT_CHANNEL_TYPES", "EscalationService"]

log = logging.getLogger("remediator.escalation")

CHAT_CHANNEL_TYPES: Final = ("slack", "teams")
"""Channel types that get the non-paging info notices (people read them, nobody is woken)."""

_RETRY_FAILED: Final = timedelta(seconds=defaults.ESCALATION_RETRY_FAILED_S)

_INFO_LEVEL: Final = "notify"


@dataclass(frozen=True)
class _Subject:
    """An incident with its latest finished execution: what a notification is about."""

    incident: Incident
    execution: Execution | None

    @property
    def id(self) -> int:
        return self.incident.id

    @property
    def identity(self) -> str:
        return incident_identity(self.incident)


class EscalationService:
    """Outbox + dispatcher + policy driver for one store; start/stop with the worker."""

    def __init__(self, store: Store, policy: EscalationPolicy, metrics: ServiceMetrics, *,
                 clock: Clock = utc_now, env: Mapping[str, str] | None = None,
                 transport: HttpTransport | None = None,
                 rand: Callable[[], float] = random.random,
                 template_dir: str | Path | None = None,
                 info_team: str = defaults.DEFAULT_ESCALATION_TEAM,
                 replica_id: str = "", is_leader: Callable[[], bool] = lambda: True) -> None:
        self.store = store
        # Replicas: every one delivers the outbox (its claims name it); only the leader
        # runs the timer (one replica at a time evaluates the policy and resolves).
        self.is_leader = is_leader
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.template_dir = template_dir
        self.info_team = info_team if info_team in policy.teams else next(iter(policy.teams))
        self.outbox = Outbox(store)
        self.dispatcher = Dispatcher(self.outbox, policy, metrics, env=env,
                                     transport=transport, clock=clock, rand=rand,
                                     owner=replica_id)
        metrics.outbox_depth.set_function(self._depth)
        self._loop = BackgroundLoop("escalation", self._timer_round,
                                    interval_s=defaults.ESCALATION_POLL_S, metrics=metrics,
                                    log=log)
        # The timer's memory of its last round (see _timer_round).
        self._seen: tuple[Any, ...] | None = None
        self._due: datetime | None = None
        self._last_end, self._gap = 0.0, 0.0
        self._led, self._recovered = False, 0.0  # replicas: leading, claims last recovered
        # The timer thread's memory of its last passes (see evaluate_open).
        self._views: dict[int, Incident] = {}
        self._views_lock = threading.Lock()  # the timer and an execution's hook both read
        self._pass_lock = threading.Lock()
        self._finish_lock = threading.Lock()
        self._evaluated: dict[int, tuple[tuple[Any, ...], datetime | None]] = {}

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.dispatcher.start()
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._loop.stop(timeout)
        self.dispatcher.stop(timeout)

    def wake(self) -> None:
        self._loop.wake()
        self.dispatcher.wake()

    def _timer_round(self) -> float:
        """A pass when woken (told of a change: look at once), when the store changed, or
        when a rule is due; returns how long to sleep. Replicas: only the leader runs the
        timer (and makes deliveries whose claim expired due again); a new leader makes a
        pass at once."""
        leading = self.is_leader()
        woken, self._led = self._loop.woken or (leading and not self._led), leading
        if not leading:
            return self._sleep_for(None)
        if time.monotonic() - self._recovered >= defaults.DELIVERY_RECOVER_S:
            self._recovered = time.monotonic()
            self._recover_expired_claims()
        now, token = self.clock(), self._changes()
        # Changes alone re-trigger a pass only after ESCALATION_PASS_GAP_FACTOR times the
        # last pass's own duration: at most ~10% of a core under an alert storm, at once
        # otherwise. Wakes and due times are served at once.
        changed = token != self._seen and time.monotonic() - self._last_end >= self._gap
        if woken or changed or (self._due is not None and self._due <= now):
            started = time.monotonic()
            self._due, self._seen = self.evaluate_open(now), token
            self._last_end = time.monotonic()
            self._gap = defaults.ESCALATION_PASS_GAP_FACTOR * (self._last_end - started)
        return self._sleep_for(self._due)

    def _recover_expired_claims(self) -> None:
        recovered = self.outbox.recover_interrupted(self.clock())
        if recovered:
            log.warning("%d notification deliveries a replica left mid-send (its claim "
                        "expired) are due again", recovered)
        self.dispatcher.wake()

    def _sleep_for(self, due: datetime | None) -> float:
        if due is None:
            return defaults.ESCALATION_POLL_S
        return min(defaults.ESCALATION_POLL_S, max(0.0, (due - self.clock()).total_seconds()))

    def _changes(self) -> tuple[Any, ...]:
        # Cheap fingerprint of what the timer cares about; intake and a CLI claim change it.
        return self.store.change_token()

    def _depth(self) -> float:
        try:
            return float(self.outbox.depth())
        except Exception:  # a scrape after close must not fail the whole /metrics
            return float("nan")

    # -- the three triggers ---------------------------------------------------------------
    def execution_finished(self, execution: Execution, result: ExecutionResult) -> None:
        """Worker hook, in the execution's thread: only writes rows, never sends.

        What escalation needs was committed with the execution's end (the store's
        ``escalation_pending``): if this fails, or the process dies before it runs, the
        timer's next pass picks it up from there (:meth:`pick_up_finished`)."""
        self._handle_finished(execution.id, result, execution)
        self.wake()

    def pick_up_finished(self) -> bool:
        """Escalate every finished execution whose escalation is not in the outbox yet
        (left by a crash or an error); False when one failed again (retried later)."""
        done = True
        for execution_id, summary in self.store.pending_escalations():
            done = self._handle_finished(execution_id, ExecutionResult.from_dict(summary)) \
                and done
        return done

    def _handle_finished(self, execution_id: int, result: ExecutionResult,
                         execution: Execution | None = None) -> bool:
        # The hook and the timer may both reach one execution: the first does it, and
        # the outbox's dedup keys make a second pass add nothing anyway.
        with self._finish_lock:
            if not self.store.escalation_pending(execution_id):
                return True
            try:
                self._execution_finished(execution_id, result, execution)
            except Exception:  # escalation trouble must not fail the execution
                log.exception("escalation after execution %s failed; kept, and tried again "
                              "in %ss", execution_id, int(_RETRY_FAILED.total_seconds()))
                return False
            self.store.escalation_handled(execution_id)
            return True

    def _execution_finished(self, execution_id: int, result: ExecutionResult,
                            execution: Execution | None = None) -> None:
        # The worker's hook hands over the execution as its end was stored (one commit
        # with the end): no need to read it again. The incident is read: a claim may have
        # landed meanwhile.
        execution = execution or self.store.execution(execution_id)
        incident = self.store.incident(execution.incident_id) if (
            execution and execution.incident_id is not None) else None
        if incident is None or incident.claimed_by:
            return  # no incident to speak of, or a human owns it: stay quiet
        subject, now = _Subject(incident, execution), self.clock()
        if not result.dry_run:
            self._info(subject, "acting", self._acting_reason(subject), now)
        asked = [self._explicit(subject, result, request) for request in result.escalations]
        self._evaluate(subject, now, asked)
        if not result.dry_run:
            self._outcome_notice(subject, result, now)

    def evaluate_open(self, now: datetime | None = None) -> datetime | None:
        """One timer pass over every open incident; returns when the next rule is due.

        An incident is evaluated again only when something its facts come from changed
        (its row, its latest finished execution, whether an execution started, the
        fleet) or when its next time-based rule is due: in an alert storm a pass costs
        one light query per open incident, not the rules and their queries for each."""
        with self._pass_lock:
            return self._evaluate_open(now or self.clock())

    def _evaluate_open(self, now: datetime) -> datetime | None:
        dues = [] if self.pick_up_finished() else [now + _RETRY_FAILED]
        open_incidents = self._open_incidents()
        others = fleet(open_incidents)
        ids = [i.id for i in open_incidents]
        latest, started = self.store.latest_finished(ids), self.store.started_among(ids)
        # A rule notifying once per window may notify again in the next one: a new window
        # is an input of every incident, and its start a due time.
        window = self.policy.window_start(now)
        if window is not None and any(not i.claimed_by for i in open_incidents):
            dues.append(window + self.policy.budget_window)
        for incident in open_incidents:
            if incident.claimed_by:
                continue
            number = incident.id
            inputs = (incident.mark, latest.get(number),
                      number in started, others, window)
            seen = self._evaluated.get(number)
            if seen is not None and seen[0] == inputs and (seen[1] is None or seen[1] > now):
                due = seen[1]
            else:
                try:
                    due = self._evaluate_one(incident, latest.get(number),
                                             number in started, others, now)
                except Exception:  # one bad incident must not hold up the others' pages
                    log.exception("escalation of incident %s failed; trying it again in %ss",
                                  number, int(_RETRY_FAILED.total_seconds()))
                    due = now + _RETRY_FAILED
                self._evaluated[number] = (inputs, due)
            if due is not None:
                dues.append(due)
        for gone in self._evaluated.keys() - set(ids):
            del self._evaluated[gone]
        self.send_resolve_notices(now)
        self.dispatcher.wake()
        return min(dues) if dues else None

    def _evaluate_one(self, incident: Incident, execution_id: int | None,
                      started: bool, others: Fleet, now: datetime) -> datetime | None:
        subject = _Subject(incident, self.store.execution(execution_id)
                           if execution_id is not None else None)
        if subject.execution is None and started:
            self._info(subject, "acting", self._acting_reason(subject), now)
        return self._evaluate(subject, now, others=others)

    def send_resolve_notices(self, now: datetime | None = None) -> list[int]:
        """A resolve for each trigger of a resolved incident, through the same channels."""
        now = now or self.clock()
        created = []
        for trigger in self.outbox.triggers_to_resolve():
            try:
                new = self._resolve_notice(trigger, now)
            except Exception:  # one bad trigger must not keep the others' resolves back
                log.exception("resolve notice for notification %s (incident %s) failed",
                              trigger.id, trigger.incident_id)
                continue
            if new is not None:
                created.append(new)
        return created

    def _resolve_notice(self, trigger: Notification, now: datetime) -> int | None:
        incident = self.store.incident(trigger.incident_id) \
            if trigger.incident_id is not None else None
        if incident is None:
            return None
        subject = _Subject(incident, self.store.latest_finished_execution(incident.id))
        message = self._render("resolve", subject, now, team=trigger.team,
                               level=trigger.level, dedup_key=trigger.dedup_key,
                               severity="info", reason="")
        draft = Draft(subject.id, "resolve", trigger.dedup_key, trigger.team,
                      trigger.level, "info", trigger.rule, "incident resolved",
                      message, self.outbox.live_channels(trigger.id),
                      trigger_id=trigger.id)
        return self.outbox.enqueue(draft, now)

    def claim(self, incident_id: int, by: str) -> ClaimResult:
        """A human takes the incident over (API and CLI)."""
        result = claim_incident(self.store, incident_id, by, self.clock())
        log.info("incident %s claimed by %s; cancelled executions: %s", incident_id,
                 result.claimed_by, result.cancelled or "none")
        self.wake()
        return result

    # -- policy ---------------------------------------------------------------------------
    def _evaluate(self, subject: _Subject, now: datetime, asked: Sequence[Escalation] = (),
                  others: Fleet | None = None) -> datetime | None:
        """Rules over the facts, plus what a playbook ``asked`` for: one row per key."""
        facts = incident_facts(subject.incident, subject.execution,
                               others or fleet(self._open_incidents()), now)
        matched = [self._in_store(e) for e in [*asked, *self.policy.matches(facts)]]
        for escalation, criteria in _merged(matched):
            self._escalate(subject, escalation, criteria, now)
        for criterion in matched:  # one that holds now, for a key told of another before
            self._update(subject, criterion, now)
        return self.policy.next_due(facts)

    def _in_store(self, escalation: Escalation) -> Escalation:
        """The escalation with its dedup key in this store's namespace (Store.instance_id)."""
        return replace(escalation, dedup_key=namespaced(escalation.dedup_key,
                                                        self.store.instance_id))

    def _explicit(self, subject: _Subject, result: ExecutionResult,
                  request: EscalationRequest) -> Escalation:
        rule = f"playbook:{result.playbook}" + (f"/{request.step_id}" if request.step_id
                                                 else "")
        try:
            return self.policy.explicit(subject.identity, request.team, request.level,
                                        request.reason, rule=rule)
        except ConfigError as exc:
            # A playbook validated against an older policy: tell the owner rather than no one.
            return self.policy.explicit(subject.identity, self.info_team, request.level
                                        if request.level in ("page", "notify") else "notify",
                                        f"{request.reason} ({exc})", rule=rule)

    def _escalate(self, subject: _Subject, escalation: Escalation, criteria: Sequence[str],
                  now: datetime) -> None:
        if self.outbox.exists(escalation.dedup_key, "trigger"):
            return  # once per dedup key, however often the rule matches
        team = self.policy.teams[escalation.team]
        message = self._render("trigger", subject, now, team=escalation.team,
                               level=escalation.level, severity=escalation.severity,
                               reason=escalation.reason, rule=escalation.rule,
                               dedup_key=escalation.dedup_key)
        draft = Draft(subject.id, "trigger", escalation.dedup_key, escalation.team,
                      escalation.level, escalation.severity, escalation.rule,
                      escalation.reason, message, _channels(team, escalation.level),
                      criteria=criteria)
        if self.outbox.enqueue(draft, now) is not None:
            self.metrics.escalations.labels(team=escalation.team, rule=escalation.rule).inc()
            log.warning("incident %s: %s %s (%s): %s", subject.id, escalation.level,
                        escalation.team, escalation.rule, escalation.reason)

    def _update(self, subject: _Subject, criterion: Escalation, now: datetime) -> None:
        """A criterion that holds for a key whose trigger told of others: an update to the
        same team and channels that names it (once per criterion), not silence. It carries
        the trigger's dedup key, so PagerDuty adds it to the alert already open."""
        found = self.outbox.trigger(criterion.dedup_key)
        if found is None or criterion.rule in found[1]:
            return
        trigger_id, _told = found
        reason = (f"Update: a further criterion now holds ({criterion.rule}): "
                  f"{criterion.reason}")
        message = self._render("trigger", subject, now, team=criterion.team,
                               level=criterion.level, severity=criterion.severity,
                               reason=reason, rule=criterion.rule,
                               dedup_key=criterion.dedup_key)
        team = self.policy.teams[criterion.team]
        draft = Draft(subject.id, "update", f"{criterion.dedup_key}#{criterion.rule}",
                      criterion.team, criterion.level, criterion.severity, criterion.rule,
                      reason, message, _channels(team, criterion.level), trigger_id=trigger_id)
        if self.outbox.enqueue(draft, now) is not None:
            self.metrics.escalations.labels(team=criterion.team, rule=criterion.rule).inc()
            log.warning("incident %s: update to %s %s (%s): %s", subject.id, criterion.level,
                        criterion.team, criterion.rule, criterion.reason)

    # -- info notices ---------------------------------------------------------------------
    def _info(self, subject: _Subject, event: str, reason: str, now: datetime) -> None:
        key = namespaced(f"remediator/{subject.identity}/info/{event}", self.store.instance_id)
        team = self.policy.teams[self.info_team]
        channels = [c for c in _channels(team, _INFO_LEVEL) if c[1] in CHAT_CHANNEL_TYPES]
        if not channels or self.outbox.exists(key, "info"):
            return
        message = self._render("info", subject, now, team=self.info_team, level=_INFO_LEVEL,
                               severity="info", reason=reason, dedup_key=key)
        self.outbox.enqueue(Draft(subject.id, "info", key, self.info_team, _INFO_LEVEL,
                                  "info", None, reason, message, channels), now)

    def _outcome_notice(self, subject: _Subject, result: ExecutionResult,
                        now: datetime) -> None:
        if result.outcome is Outcome.SUCCESS and result.validated:
            self._info(subject, "fixed", f"Remediator fixed it: playbook {result.playbook} "
                       "ran and the service validated healthy.", now)
        elif not result.stopped_fixing:
            self._info(subject, "gave-up", f"Remediator gave up: playbook {result.playbook} "
                       f"ended {result.outcome.value} ({result.reason or 'no reason'}); "
                       "a human has to look.", now)

    def _acting_reason(self, subject: _Subject) -> str:
        playbook = self.store.first_playbook(subject.id) or "a playbook"
        return (f"Remediator is acting on it: running {playbook} on "
                f"{subject.incident.target or 'the target'}. Claim the incident "
                f"(remediator claim {subject.id}) to stop it.")

    # -- rendering and reading ------------------------------------------------------------
    def _render(self, kind: MessageKind, subject: _Subject, now: datetime,
                **values: Any) -> Message:
        context = {**message_context(subject.incident, subject.execution, now), **values}
        try:
            return render_message(self.template_dir, kind, context)
        except TemplateError as exc:  # the notification must still go out
            log.error("cannot render a %s notification: %s", kind, exc)
            return Message(kind=kind, team=values["team"], level=values["level"],
                           title=f"{subject.incident.alertname} on "
                                 f"{subject.incident.target or '?'}",
                           text=str(values.get("reason") or kind), incident_id=str(subject.id),
                           dedup_key=values["dedup_key"],
                           severity=values.get("severity") or "warning",
                           source=subject.incident.target or "remediator")

    def _open_incidents(self) -> list[Incident]:
        """Every firing incident; records of unchanged incidents are reused (the labels'
        JSON is parsed once per change, not once per pass)."""
        with self._views_lock:
            return self._open_records()

    def _open_records(self) -> list[Incident]:
        marks = self.store.firing_marks()
        cache = self._views
        stale = [number for number, mark in marks.items()
                 if (cached := cache.get(number)) is None or cached.mark != mark]
        for incident in self.store.incidents_by_ids(stale):
            cache[incident.id] = incident
        for gone in cache.keys() - marks.keys():
            del cache[gone]
        return [cache[number] for number in marks if number in cache
                and cache[number].status is IncidentStatus.FIRING]

    def notifications(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.outbox.notifications(limit)


def _merged(escalations: Sequence[Escalation]) -> list[tuple[Escalation, list[str]]]:
    # A playbook's request and the rules decided at the same moment for the same key become
    # one notification carrying every reason and the worst severity, named after the first;
    # with it, the criteria (rules) it tells of.
    found: dict[str, tuple[Escalation, list[str]]] = {}
    for item in escalations:
        if item.dedup_key not in found:
            found[item.dedup_key] = (item, [item.rule])
            continue
        first, criteria = found[item.dedup_key]
        if item.rule not in criteria:
            criteria.append(item.rule)
        if item.reason not in first.reason:
            worse = min(first.severity, item.severity, key=_severity_rank)
            found[item.dedup_key] = (replace(first, reason=f"{first.reason}; {item.reason}",
                                             severity=worse), criteria)
    return list(found.values())


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _channels(team: TeamConfig, level: str) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in team.channels if level in c.levels]
