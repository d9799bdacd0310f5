"""The shipped model_memory_usage.yml and model_load_time.yml, scenario by scenario, with a
fake runtime: which playbook and target an alert gets, what each scenario changes, and
who is told."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediator.core.alerts import Alert, parse_alert, parse_webhook
from remediator.core.config import RemediatorConfig, load_config
from remediator.core.playbook import load_playbooks, select_playbook
from remediator.core.playbook_model import Playbook
from remediator.core.results import ExecutionResult, Outcome
from remediator.core.runner import run_playbook
from remediator.core.targets import match_target
from tests.support.fakes import FakeClock, FakeRuntime
from tests.support.fixtures import ALERTMANAGER

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ALERTMANAGER
GIB = 2**30
MUTATING = {"docker.update", "docker.restart", "docker.recreate", "docker.copy", "docker.exec"}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> RemediatorConfig:
    """The shipped config plus a target for one replica, app-prod-2."""
    data = yaml.safe_load((ROOT / "config" / "remediator.yml").read_text())
    replica = {**data["targets"][0], "name": "app-prod-2", "container": "app-prod-2",
               "selector": {"service": "app-prod", "instance": "app-prod-2:8080"},
               "base_url": "http://127.0.0.1:8081"}
    data["targets"].append(replica)
    path = tmp_path_factory.mktemp("config") / "remediator.yml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, env={})


@pytest.fixture(scope="module")
def playbooks(config: RemediatorConfig) -> list[Playbook]:
    return load_playbooks(ROOT / "playbooks", config.targets)


def alert(name: str, instance: str = "app-prod:8080") -> Alert:
    return parse_alert({"status": "firing", "startsAt": "2026-11-29T11:27:05Z",
                        "labels": {"alertname": name, "service": "app-prod", "job": "app-prod",
                                   "instance": instance, "severity": "warning"},
                        "annotations": {}})


def queries(**values: float | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """prometheus.query answers by metric: queries(deriv=1e6, model_load_duration=75)."""
    def answer(args: dict[str, Any]) -> dict[str, Any]:
        value = next((v for key, v in values.items() if args["query"].startswith(key)), None)
        return {"value": value, "result": [], "output": f"{args['query']} = {value}"}
    return answer


def stats(*percents: float) -> list[Any]:
    return [{"memory_percent": p, "memory_usage": int(p * GIB * 3 / 100),
             "memory_limit": 3 * GIB, "output": f"{p}%"} for p in percents]


def inspect(limit: int = 3 * GIB, oom_killed: bool = False,
            cpus: float | None = None) -> dict[str, Any]:
    return {"running": not oom_killed, "oom_killed": oom_killed, "memory_limit": limit,
            "cpus": cpus, "output": "inspect"}


HEALTHY = {"ok": True, "status_code": 200, "body": {"status": "healthy"}, "output": "200"}
LOADING = {"ok": False, "status_code": 503, "body": {"status": "loading"},
           "output": "expectation not met"}


def execute(playbooks: list[Playbook], config: RemediatorConfig, the_alert: Alert,
            runtime: FakeRuntime, dry_run: bool = False) -> ExecutionResult:
    playbook = select_playbook(playbooks, the_alert)
    target = match_target(config.targets, the_alert.labels)
    assert playbook is not None and target is not None
    clock = FakeClock()
    return run_playbook(playbook, the_alert, target, runtime, dry_run=dry_run,
                        clock=clock.monotonic, sleep=clock.sleep, now=clock.now)


def mutations(runtime: FakeRuntime) -> list[tuple[str, dict[str, Any]]]:
    return [(call[0], call[1]) for call in runtime.calls if call[0] in MUTATING
            and not (call[0] == "docker.exec" and call[1]["cmd"][0] == "df")]


def told(result: ExecutionResult) -> list[str]:
    return [request.team for request in result.escalations]


# -- which playbook, which target -----------------------------------------------------------
def test_the_grouped_memory_fixture_selects_the_memory_playbook_per_replica(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    body = json.loads((FIXTURES / "firing-model-memory-usage-grouped.json").read_text())
    alerts = parse_webhook(body).alerts
    chosen = [(select_playbook(playbooks, a), match_target(config.targets, a.labels))
              for a in alerts]
    assert [(p.name if p else None, t.name if t else None) for p, t in chosen] == [
        ("model-memory-usage", "app-prod-2"), ("model-memory-usage", "app-prod")]

    runtime = FakeRuntime(prometheus__query=queries(model_memory=2.4e9, deriv=0.0),
                          docker__stats=stats(60), docker__inspect=inspect())
    result = execute(playbooks, config, alerts[0], runtime)
    assert result.target == "app-prod-2"
    assert {call.target.name for call in runtime.calls} == {"app-prod-2"}
    assert [call[1]["query"] for call in runtime.calls if call[0] == "prometheus.query"] == [
        'model_memory_usage_bytes{instance="app-prod-2:8080"}',
        'deriv(model_memory_usage_bytes{instance="app-prod-2:8080"}[15m])']


def test_a_label_cannot_break_out_of_the_promql_string(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = FakeRuntime(prometheus__query=queries(), docker__stats=stats(50),
                          docker__inspect=inspect())
    execute(playbooks, config, alert("ModelMemoryUsage", 'x"} or vector(1) #'), runtime)
    query = next(call[1]["query"] for call in runtime.calls if call[0] == "prometheus.query")
    assert query == 'model_memory_usage_bytes{instance="x\\"} or vector(1) #"}'


def test_every_shipped_playbook_is_selected_by_its_alert(playbooks: list[Playbook]) -> None:
    names = {name: select_playbook(playbooks, alert(name)) for name in (
        "ModelLoadFailure", "ModelLoadTime", "ModelMemoryUsage")}
    assert {k: p.name if p else None for k, p in names.items()} == {
        "ModelLoadFailure": "model-load-failure", "ModelLoadTime": "model-load-time",
        "ModelMemoryUsage": "model-memory-usage"}
    assert select_playbook(playbooks, alert("RemediatorDown")) is None


# -- model_memory_usage.yml -----------------------------------------------------------------
def test_memory_near_the_limit_raises_it_to_the_targets_max_without_a_restart(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = FakeRuntime(prometheus__query=queries(model_memory=2.8e9, deriv=0.0),
                          docker__stats=stats(92, 70), docker__inspect=inspect(),
                          http__check=HEALTHY)
    result = execute(playbooks, config, alert("ModelMemoryUsage"), runtime)
    assert result.scenario == "near_limit"
    assert mutations(runtime) == [("docker.update", {"memory": 4 * GIB, "memory_swap": 4 * GIB})]
    assert result.outcome is Outcome.SUCCESS, result.reason


def test_memory_near_the_limit_already_at_the_ceiling_asks_infrastructure(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = FakeRuntime(prometheus__query=queries(model_memory=3.7e9, deriv=0.0),
                          docker__stats=stats(93), docker__inspect=inspect(limit=4 * GIB))
    result = execute(playbooks, config, alert("ModelMemoryUsage"), runtime)
    assert mutations(runtime) == []
    assert result.outcome is Outcome.ESCALATED and told(result) == ["infrastructure"]
    assert "cannot be raised further" in result.escalations[0].reason


def test_memory_oom_killed_raises_the_limit(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = FakeRuntime(prometheus__query=queries(), docker__stats=stats(0, 40),
                          docker__inspect=inspect(oom_killed=True), http__check=HEALTHY)
    result = execute(playbooks, config, alert("ModelMemoryUsage"), runtime)
    assert result.scenario == "out_of_memory"
    assert [m[0] for m in mutations(runtime)] == ["docker.update"]


def test_memory_still_tight_after_the_raise_is_reported(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = FakeRuntime(prometheus__query=queries(deriv=0.0), docker__stats=stats(92, 88),
                          docker__inspect=inspect(), http__check=HEALTHY)
    result = execute(playbooks, config, alert("ModelMemoryUsage"), runtime)
    assert result.outcome is Outcome.ESCALATED and told(result) == ["infrastructure"]
    assert "still at 88% of the memory limit" in result.escalations[0].reason


def test_memory_growing_steadily_restarts_and_reports_the_leak(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = FakeRuntime(prometheus__query=queries(model_memory=2.2e9, deriv=1.2e6),
                          docker__stats=stats(70, 30), docker__inspect=inspect(),
                          http__check=HEALTHY)
    result = execute(playbooks, config, alert("ModelMemoryUsage"), runtime)
    assert result.scenario == "memory_leak"
    assert [m[0] for m in mutations(runtime)] == ["docker.restart"]
    assert told(result) == ["ml-team-lead"] and "a leak?" in result.escalations[0].reason


def test_memory_big_but_stable_changes_nothing_and_tells_the_ml_team(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = FakeRuntime(prometheus__query=queries(model_memory=2.1e9, deriv=100.0),
                          docker__stats=stats(66), docker__inspect=inspect())
    result = execute(playbooks, config, alert("ModelMemoryUsage"), runtime)
    assert result.scenario == "high_but_stable" and mutations(runtime) == []
    assert told(result) == ["ml-team-lead"] and "2100000000.0 bytes" in result.escalations[0].reason
    assert "http.check" not in runtime.actions()


def test_memory_dry_run_mutates_nothing(playbooks: list[Playbook],
                                        config: RemediatorConfig) -> None:
    runtime = FakeRuntime(prometheus__query=queries(deriv=0.0), docker__stats=stats(95),
                          docker__inspect=inspect(), http__check=HEALTHY)
    result = execute(playbooks, config, alert("ModelMemoryUsage"), runtime, dry_run=True)
    assert result.outcome is Outcome.DRY_RUN and mutations(runtime) == []
    raised = result.step("raise_limit")
    assert raised is not None and raised.status.value == "skipped_dry_run"


# -- model_load_time.yml --------------------------------------------------------------------
def load_time_runtime(*, last: float | None = 75.0, running: float | None = 0.0,
                      memory: float = 50.0, df: str = "overlay 100 50 50 50% /app/models",
                      health: Any = HEALTHY, oom_killed: bool = False,
                      logs: str = "model load started", cpus: float | None = None
                      ) -> FakeRuntime:
    return FakeRuntime(
        prometheus__query=queries(model_load_duration=last, model_load_in_progress=running),
        docker__logs={"output": logs}, docker__inspect=inspect(oom_killed=oom_killed, cpus=cpus),
        docker__stats=stats(memory, 40), docker__exec={"output": df, "exit_code": 0},
        http__check=health)


def test_a_slow_finished_load_changes_nothing_and_tells_the_ml_team(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = load_time_runtime(last=75.0, running=0.0)
    result = execute(playbooks, config, alert("ModelLoadTime"), runtime)
    assert result.scenario == "slow_load" and mutations(runtime) == []
    assert told(result) == ["ml-team-lead"] and "last load 75.0s" in result.escalations[0].reason


def test_a_load_still_running_is_waited_for_not_restarted(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = load_time_runtime(running=90.0, health=[LOADING, LOADING, HEALTHY])
    result = execute(playbooks, config, alert("ModelLoadTime"), runtime)
    assert result.scenario == "loading" and mutations(runtime) == []
    health = next(call[1] for call in runtime.calls if call[0] == "http.check")
    assert health["retries"] * health["interval"] >= 120  # room for a slow load to finish


def test_a_hung_load_is_restarted_and_validated(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = load_time_runtime(running=420.0)
    result = execute(playbooks, config, alert("ModelLoadTime"), runtime)
    assert result.scenario == "load_hung"
    assert [m[0] for m in mutations(runtime)] == ["docker.restart"]
    assert result.outcome is Outcome.SUCCESS and told(result) == []


def test_a_load_starved_of_memory_gets_more(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = load_time_runtime(running=120.0, memory=96.0)
    result = execute(playbooks, config, alert("ModelLoadTime"), runtime)
    assert result.scenario == "memory_pressure"
    assert mutations(runtime) == [("docker.update", {"memory": 4 * GIB, "memory_swap": 4 * GIB})]
    assert result.outcome is Outcome.SUCCESS


def test_a_load_starved_of_cpu_gets_the_targets_max_cpus_without_a_restart(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = load_time_runtime(running=70.0, cpus=0.1)
    result = execute(playbooks, config, alert("ModelLoadTime"), runtime)
    assert result.scenario == "cpu_starved"
    assert mutations(runtime) == [("docker.update", {"cpus": 2.0})]
    assert result.outcome is Outcome.SUCCESS and told(result) == []


def test_a_cpu_limit_within_the_bounds_is_not_starvation(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = load_time_runtime(running=70.0, cpus=1.0)
    result = execute(playbooks, config, alert("ModelLoadTime"), runtime)
    assert result.scenario == "loading" and mutations(runtime) == []


def test_an_oom_killed_load_gets_more_memory_and_a_restart(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = load_time_runtime(oom_killed=True)
    result = execute(playbooks, config, alert("ModelLoadTime"), runtime)
    assert result.scenario == "out_of_memory"
    assert [m[0] for m in mutations(runtime)] == ["docker.update", "docker.restart"]


def test_a_full_disk_goes_to_infrastructure_untouched(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = load_time_runtime(df="overlay 100 100 0 100% /app/models")
    result = execute(playbooks, config, alert("ModelLoadTime"), runtime)
    assert result.scenario == "disk_full" and mutations(runtime) == []
    assert told(result) == ["infrastructure"] and "http.check" not in runtime.actions()


def test_a_load_that_never_finishes_after_the_restart_is_escalated(
    playbooks: list[Playbook], config: RemediatorConfig,
) -> None:
    runtime = load_time_runtime(running=400.0, health=LOADING)
    result = execute(playbooks, config, alert("ModelLoadTime"), runtime)
    assert [m[0] for m in mutations(runtime)] == ["docker.restart"]
    assert result.outcome is Outcome.ESCALATED and told(result) == ["ml-team-lead"]
    assert "still not loaded after the load_hung handling" in result.escalations[0].reason
