"""The pure core of Remediator: no Flask, no Docker, no network.

Import from the submodules; each has one job:

    alerts      the Alertmanager v4 webhook payload, incident identity
    targets     declared targets, matching alerts to them, resource bounds
    config      config/remediator.yml, layered with defaults and REMEDIATOR_* variables
    defaults    every code default, as named constants
    units       durations ("10m") and sizes ("4g")
    actions     the action catalogue (names, mutating, arguments, outputs)
    templates   the sandboxed template and expression evaluator
    playbook_model  the playbook model (frozen dataclasses)
    playbook    the playbook loaders and playbook selection
    validate    `remediator validate`: problems with file, line and field
    runner      the step runner and the Runtime protocol adapters implement
    results     step and execution results, lifecycle enums
    classify    diagnose.classify (runbook error patterns -> scenario)
    problems    Problem (file, line, field, message), printed like a compiler message

The escalation policy (config/escalation.yml), one module per job:

    escalation_facts     IncidentFacts, the facts a rule may test, and conditions
    escalation_channels  levels, severities, channel types and their settings, teams
    escalation_eval      rules, evaluation, escalations and their dedup keys
    escalation_load      reading the file: every problem with file, line and field

Redaction and retry backoff (redact, backoff) live here too; see their own docstrings.
Modules starting with `_` are internal.
"""

__all__: list[str] = []
