"""Remediator's own Prometheus metrics, on a registry handed in (one per test)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServiceMetrics"]


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.webhook_requests = Counter(
            "remediator_webhook_requests", "Webhook requests by HTTP status code.", ["code"],
            registry=registry)
        self.alerts_received = Counter(
            "remediator_alerts_received", "Alerts received, by status.", ["status"],
            registry=registry)
        self.duplicates = Counter(
            "remediator_duplicates", "Repeated notices of an incident already known.",
            registry=registry)
        self.dead_letters = Counter(
            "remediator_dead_letters", "Webhook bodies refused as invalid and kept.",
            registry=registry)
        self.inbox_depth = Gauge("remediator_inbox_depth", "Stored payloads not yet processed.",
                                 registry=registry)
        self.executions = Counter(
            "remediator_executions", "Finished executions by playbook and outcome.",
            ["playbook", "outcome"], registry=registry)
        self.execution_duration = Histogram(
            "remediator_execution_duration_seconds", "Duration of executions.",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600), registry=registry)
        self.step_duration = Histogram(
            "remediator_step_duration_seconds", "Duration of steps by action.", ["action"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=registry)
        self.paused = Gauge("remediator_paused", "1 while the kill switch is on (observe only).",
                            registry=registry)
        self.notifications = Counter(
            "remediator_notifications", "Notification delivery attempts by channel and outcome "
            "(delivered, retry, failed, not_configured, skipped).", ["channel", "outcome"],
            registry=registry)
        self.escalations = Counter(
            "remediator_escalations", "Notifications accepted into the outbox, by team and rule "
            "(once per dedup key).", ["team", "rule"], registry=registry)
        self.outbox_depth = Gauge(
            "remediator_outbox_depth", "Notification deliveries still owed an attempt.",
            registry=registry)
        self.engine_up = Gauge(
            "remediator_engine_up", "1 when the Docker engine answers, by engine address "
            "(each engine a target names).", ["engine"], registry=registry)
        self.leader = Gauge(
            "remediator_leader", "1 while this replica holds the leader lease (it runs the "
            "escalation timer, reconciliation and housekeeping).", registry=registry)
        self.replica = Gauge(
            "remediator_replica_info", "This replica: its id and role (always 1).",
            ["replica_id", "role"], registry=registry)

        self.loop_last_run = Gauge(
            "remediator_loop_last_run_timestamp_seconds", "Unix time each background loop "
            "(worker, outbox, escalation, reconcile, inbox-writer) last ended a round "
            "without an error.", ["loop"], registry=registry)
        self.loop_errors = Counter(
            "remediator_loop_errors", "Background loop rounds that raised, by loop.",
            ["loop"], registry=registry)

    def set_engines(self, states: dict[str, dict[str, Any]]) -> None:
        """remediator_engine_up from Engines.states()."""
        for engine, state in states.items():
            self.engine_up.labels(engine=engine).set(1 if state["up"] else 0)
