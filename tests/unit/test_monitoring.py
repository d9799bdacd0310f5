"""monitoring/ and docker-compose.yml checked by the tools that will read them: promtool
(rule unit tests, config), amtool and docker-compose. No engine or server is needed.

The tools come from `make host`; a missing one skips on a laptop and fails under CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.stack import APP_HEALTHCHECK, AppSpec, Timings, render_alerts
from remediator.core.config import load_config
from tests.harness.docker_engine import in_ci

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed: run `make host`"
        if in_ci():
            pytest.fail(message + " (required under CI=true)", pytrace=False)
        pytest.skip(message)
    return path


def check(argv: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


# -- alert rules ------------------------------------------------------------------------------
def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    out = check([tool("promtool"), "test", "rules", str(MONITORING / "alerts.test.yml")])
    assert "SUCCESS" in out


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for name in (rule["alert"] for rule in alert_rules()):
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name} never tested firing"
        assert any(not case["exp_alerts"] for case in mine), f"{name} never tested quiet"


def test_every_alert_has_a_severity_summary_and_runbook_url() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert {"ModelLoadFailure", "ModelLoadTime", "ModelMemoryUsage", "RemediatorDown",
            "RemediatorExecutionsFailing", "RemediatorOutboxStuck",
            "RemediatorPaused", "RemediatorNotificationsUndelivered",
            "CriticalAlertUnresolved"} <= set(names)
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook_url"].startswith("https://"), rule["alert"]


def test_the_for_annotation_repeats_the_rules_for_so_downtime_counts_from_the_start() -> None:
    # Remediator counts "down for 10 minutes" from startsAt less the `for` annotation
    # (escalation/facts.py down_since); a rule whose two durations differ pages early or late.
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert rules["ModelLoadFailure"]["annotations"]["for"] == rules["ModelLoadFailure"]["for"]
    for rule in rules.values():
        if "for" in rule.get("annotations", {}):
            assert rule["annotations"]["for"] == rule["for"], rule["alert"]
    shortened = yaml.safe_load(render_alerts((MONITORING / "alerts.yml").read_text(),
                                             Timings(alert_for="5s")))
    for group in shortened["groups"]:  # a stack that shortens `for:` shortens both
        for rule in group["rules"]:
            if "for" in rule.get("annotations", {}):
                assert rule["annotations"]["for"] == rule["for"] == "5s", rule["alert"]


# -- Prometheus and Alertmanager configs ------------------------------------------------------
def test_prometheus_config_and_its_rule_files_are_valid(tmp_path: Path) -> None:
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(MONITORING / name, tmp_path / name)
    out = check([tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")])
    assert "SUCCESS: 10 rules found" in out


def test_alertmanager_config_is_valid(tmp_path: Path) -> None:
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    token = tmp_path / "remediator-token"
    token.write_text("not-a-real-token")
    hooks = [hook for receiver in config["receivers"]
             for hook in receiver.get("webhook_configs", [])]
    assert hooks, "Alertmanager must post to Remediator's webhook"
    for hook in hooks:
        hook["http_config"]["authorization"]["credentials_file"] = str(token)
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    check([tool("amtool"), "check-config", str(tmp_path / "alertmanager.yml")])


# -- docker-compose.yml -----------------------------------------------------------------------
COMPOSE_ENV = {"REMEDIATOR_WEBHOOK_TOKEN": "not-a-real-token", "BASE_IMAGE": ""}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """`docker-compose config`: the file as Compose resolves it (variables, defaults)."""
    out = subprocess.run([tool("docker-compose"), "config"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={**os.environ, **COMPOSE_ENV})
    assert out.returncode == 0, out.stderr
    config: dict[str, Any] = yaml.safe_load(out.stdout)
    return config


def test_compose_file_is_valid() -> None:
    check([tool("docker-compose"), "config", "-q"], env=COMPOSE_ENV)
    check([tool("docker-compose"), "--profile", "ha", "config", "-q"], env=COMPOSE_ENV)


def compose_config(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`docker-compose [args] config` with exactly ``env`` (plus PATH): the file resolved."""
    out = subprocess.run([tool("docker-compose"), *args, "config"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": os.environ["PATH"], **(env or {})})
    assert out.returncode == 0, out.stderr
    config: dict[str, Any] = yaml.safe_load(out.stdout)
    return config


@pytest.fixture(scope="module")
def compose_ha() -> dict[str, Any]:
    """`docker-compose --profile ha config` with an EMPTY environment (issue 19)."""
    return compose_config("--profile", "ha")


def test_compose_without_a_webhook_token_gives_remediator_none_and_serve_refuses_it(
    tmp_path: Path,
) -> None:
    """Compose resolves with an empty environment (so the `ha` profile can be checked
    anywhere); the refusal to run without a token is `remediator serve`'s, at start."""
    services = compose_config()["services"]
    token = services["remediator"]["environment"]["REMEDIATOR_WEBHOOK_TOKEN"]
    assert token == ""
    (tmp_path / "remediator.yml").write_text("targets: []\n")
    env = {**os.environ, "REMEDIATOR_WEBHOOK_TOKEN": token}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "remediator"), "serve", "--config",
         str(tmp_path / "remediator.yml"), "--db", str(tmp_path / "r.db"), "--playbooks",
         str(ROOT / "playbooks"), "--port", "1"],
        capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0 and "REMEDIATOR_WEBHOOK_TOKEN" in proc.stderr, proc.stderr
    assert not (tmp_path / "r.db").exists()


def test_compose_ha_profile_runs_postgres_two_replicas_and_two_alertmanagers(
    compose_ha: dict[str, Any],
) -> None:
    services = compose_ha["services"]
    assert {"postgres", "remediator", "remediator-2", "alertmanager",
            "alertmanager-2"} <= set(services)
    replicas = [services["remediator"], services["remediator-2"]]
    assert [r["environment"]["REMEDIATOR_REPLICA_ID"] for r in replicas] == [
        "remediator-1", "remediator-2"]
    for replica in replicas:
        env, command = replica["environment"], replica["command"]
        # One store for both, named once (REMEDIATOR_DB); no --db to disagree with it.
        assert env["REMEDIATOR_DB"] == replicas[0]["environment"]["REMEDIATOR_DB"]
        assert "--db" not in command and command[command.index("--role") + 1] == "all"
        assert env["PGPASSFILE"] == "/run/secrets/pgpass"
        assert "pgpass" in {secret["source"] for secret in replica["secrets"]}
        assert "PGPASSWORD" not in env and "password" not in " ".join(command).lower()
        assert "/var/run/docker.sock:/var/run/docker.sock:rw" in replica["volumes"]
        assert any(v.endswith(":/app/playbooks:ro") for v in replica["volumes"])
        assert any(v.endswith(":/app/config:ro") for v in replica["volumes"])
    # Both Alertmanagers, unclustered, deliver to the name both replicas answer to, and
    # Prometheus finds every Alertmanager by the name both answer to.
    for name in ("alertmanager", "alertmanager-2"):
        command = " ".join(services[name]["command"])
        assert "--cluster.peer" not in command, name
    aliases = {name: set((services[name]["networks"].get("control") or {}).get("aliases", []))
               for name in ("remediator-2", "alertmanager-2")}
    assert aliases == {"remediator-2": {"remediator"}, "alertmanager-2": {"alertmanager"}}
    hooks = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())["receivers"]
    assert {h["url"] for r in hooks for h in r.get("webhook_configs", [])} == {
        "http://remediator:9096/api/v1/alerts"}
    prom = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    [manager] = prom["alerting"]["alertmanagers"]
    assert manager["dns_sd_configs"] == [{"names": ["alertmanager"], "type": "A",
                                          "port": 9093}]
    pg = services["postgres"]
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in pg["environment"] and "ports" not in pg
    assert set(pg["networks"]) == {"control"}


def test_compose_default_shape_is_unchanged_by_the_ha_profile() -> None:
    """Without `--profile ha` the four services of the production shape, on SQLite."""
    services = compose_config()["services"]
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {"app-prod", "remediator", "prometheus", "alertmanager"}
    assert all(services[name]["profiles"] == ["ha"] for name in set(services) - default)
    env = services["remediator"]["environment"]
    assert env["REMEDIATOR_DB"] == "sqlite:////app/state/remediator.db"
    assert "remediator-state:/app/state:rw" in services["remediator"]["volumes"]


def test_compose_app_prod_runs_as_make_up_runs_it(compose: dict[str, Any]) -> None:
    app, spec = compose["services"]["app-prod"], AppSpec()
    assert app["container_name"] == spec.name and app["image"] == spec.image
    assert app["build"]["target"] == "modelserver" and "BASE_IMAGE" in app["build"]["args"]
    assert app["mem_limit"] == app["memswap_limit"] == spec.memory
    assert app["restart"] == "unless-stopped"
    health = app["healthcheck"]
    assert health["test"] == APP_HEALTHCHECK["test"] and health["retries"] == 3
    assert (health["interval"], health["timeout"], health["start_period"]) == ("1m", "30s", "2m")
    assert app["ports"] == [f"127.0.0.1:{spec.port}:8080/tcp"]
    assert sorted(app["volumes"]) == sorted([f"{spec.models_volume}:/app/models:rw",
                                             f"{spec.backup_volume}:/backup/models:rw"])


def test_compose_services_publish_on_loopback_only(compose_ha: dict[str, Any]) -> None:
    services = compose_ha["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_compose_remediator_reaches_docker_prometheus_and_its_config(
    compose: dict[str, Any],
) -> None:
    rem = compose["services"]["remediator"]
    assert "/var/run/docker.sock:/var/run/docker.sock:rw" in rem["volumes"]
    assert rem["environment"]["REMEDIATOR_WEBHOOK_TOKEN"] == "not-a-real-token"
    assert rem["environment"]["REMEDIATOR_PROMETHEUS_URL"] == "http://prometheus:9090"
    config_arg = rem["command"][rem["command"].index("--config") + 1]
    assert config_arg == "/app/config/remediator.compose.yml"
    assert any(volume.endswith(":/app/config:ro") for volume in rem["volumes"])
    assert any(volume.endswith(":/app/playbooks:ro") for volume in rem["volumes"])


def test_compose_alertmanager_gets_the_token_file_its_config_names(
    compose: dict[str, Any],
) -> None:
    am = compose["services"]["alertmanager"]
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    wanted = {hook["http_config"]["authorization"]["credentials_file"]
              for receiver in config["receivers"]
              for hook in receiver.get("webhook_configs", [])}
    assert wanted <= {secret.get("target") for secret in am["secrets"]}


def test_compose_monitoring_needs_credentials_and_alertmanager_is_off_the_apps_network(
    compose: dict[str, Any],
) -> None:
    """Issue 16 item 1: basic auth on both, no lifecycle API, and the app container shares no
    network with Alertmanager (Prometheus still shares one with the app, to scrape it)."""
    services = compose["services"]
    nets = {name: set(service.get("networks") or ["default"])
            for name, service in services.items()}
    assert not nets["app-prod"] & nets["alertmanager"]
    assert nets["app-prod"] & nets["prometheus"] and nets["prometheus"] & nets["alertmanager"]
    assert nets["remediator"] & nets["alertmanager"]
    for name in ("prometheus", "alertmanager"):
        command = " ".join(services[name]["command"])
        assert "--web.config.file=" in command and "lifecycle" not in command, name
    prom = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert all(manager["basic_auth"]["password_file"] for manager
               in prom["alerting"]["alertmanagers"])


def test_serving_alerts_carry_a_model_label_from_the_scrape() -> None:
    """Issue 16 item 5: the escalation criterion "multiple different models failing" counts
    the `model` label of app alerts; every serving target's scrape gives one."""
    prom = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    [job] = [j for j in prom["scrape_configs"] if j["job_name"] == "app-prod"]
    assert all(static["labels"].get("model") for static in job["static_configs"])


def test_lifecycle_api_is_off_in_every_shape() -> None:
    for path in ("docker-compose.yml", "scripts/stack.py", "tests/harness/processes.py",
                 "app/devstack/stack.py"):
        assert "enable-lifecycle" not in (ROOT / path).read_text(), path


def test_only_an_example_web_config_is_shipped_and_it_has_no_usable_hash() -> None:
    example = yaml.safe_load((MONITORING / "web-config.example.yml").read_text())
    [hashed] = example["basic_auth_users"].values()
    assert "REPLACE" in hashed
    assert not (MONITORING / "web-config.yml").exists()


def test_compose_config_differs_from_the_host_config_only_in_addresses() -> None:
    host = load_config(ROOT / "config" / "remediator.yml", env={})
    inside = load_config(ROOT / "config" / "remediator.compose.yml", env={})
    assert [t.base_url for t in inside.targets] == ["http://app-prod:8080"]
    assert inside.prometheus_url == "http://prometheus:9090"
    assert inside.alertmanager_url == "http://alertmanager:9093"
    assert [replace(t, base_url="") for t in inside.targets] == [
        replace(t, base_url="") for t in host.targets]
    ignored = ("targets", "prometheus_url", "alertmanager_url", "db_path", "source")
    assert {k: v for k, v in vars(inside).items() if k not in ignored} == {
        k: v for k, v in vars(host).items() if k not in ignored}


# -- alertmanager.yml routes -------------------------------------------------------------------
REMEDIATED = ("ModelLoadFailure", "ModelLoadTime", "ModelMemoryUsage")


def remediation_route(config: dict[str, Any]) -> dict[str, Any]:
    """The remediation route's values as Alertmanager applies them (a child inherits
    what it does not set from the root)."""
    root = config["route"]
    for child in root["routes"]:
        if any(name in " ".join(child.get("matchers", [])) for name in REMEDIATED):
            inherited = {k: root[k] for k in ("group_wait", "group_interval", "repeat_interval")}
            return {**inherited, **child}
    raise AssertionError("no route sends the remediated alerts to Remediator")


def seconds(value: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(value[:-1]) * units[value[-1]]


def test_a_remediated_alert_firing_again_soon_is_sent_within_seconds() -> None:
    """A ModelLoadFailure that fires again soon after the previous one resolved joins its
    still-existing group: it is sent after the route's group_interval, which must be seconds
    (make demo-all measured 40-55 s of waiting with the root's inherited 1m)."""
    route = remediation_route(yaml.safe_load((MONITORING / "alertmanager.yml").read_text()))
    assert route["receiver"] == "remediator"
    assert seconds(route["group_wait"]) <= 1
    assert seconds(route["group_interval"]) <= 10, route
    assert seconds(route["repeat_interval"]) == 3600, route  # repeats stay hourly


def test_the_rendered_configs_keep_the_remediation_routes_shipped_intervals() -> None:
    """`make up` and the test harness render alertmanager.yml; neither loses the route's
    own values (a test's shortened timings change the root route only)."""
    from devstack.stack import render_alertmanager_config

    shipped = (MONITORING / "alertmanager.yml").read_text()
    expected = remediation_route(yaml.safe_load(shipped))
    for timings in (Timings(), Timings(group_wait="1s", group_interval="2s",
                                       repeat_interval="1h")):
        rendered = yaml.safe_load(render_alertmanager_config(
            shipped, "http://127.0.0.1:1/api/v1/alerts", "/dev/null", timings))
        route = remediation_route(rendered)
        for key in ("group_wait", "group_interval"):
            assert route[key] == expected[key], (timings, key)


def test_readme_says_how_compose_reads_each_secret_file() -> None:
    """Compose secrets without Swarm are bind mounts read as the images' user (nobody), and
    `make up` writes them 0600 as you: README.md's "Run it with Compose" gives every secret
    file's variable a copy owned by 65534."""
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    variables = {secret["file"].split(":-")[0].removeprefix("${")
                 for secret in raw["secrets"].values()}
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run it with Compose", 1)[1].split("\n## ", 1)[0]
    assert "-o 65534 -g 65534" in section
    for variable in sorted(variables):
        assert f"{variable}=.state/compose/" in section, variable


def test_readme_says_how_to_run_several_replicas() -> None:
    """Issue 19: README's "Run several replicas" says how to run them on PostgreSQL, what
    each one needs, and what happens when one dies or the database is down; its lease
    figures are the code's, and no example puts a password in a URL or on a command line."""
    from remediator.core.defaults import (
        EXECUTION_LEASE_S,
        LEADER_LEASE_S,
        LEASE_RENEW_FRACTION,
    )

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run several replicas", 1)[1].split("\n## ", 1)[0]
    for needed in ("REMEDIATOR_DB", "PGPASSFILE", "PGPASSWORD", "remediator db copy --from",
                   "--replica-id", "REMEDIATOR_REPLICA_ID", "--role intake", "--role worker",
                   "REMEDIATOR_WEBHOOK_TOKEN", "--playbooks", "--config", "Docker", "503",
                   "--profile ha", "make bench-failover"):
        assert needed in section, needed
    flat = " ".join(section.split())
    assert (f"lease ({EXECUTION_LEASE_S:g} s, renewed every "
            f"{EXECUTION_LEASE_S * LEASE_RENEW_FRACTION:g} s") in flat
    assert f"(the `leader` lease, {LEADER_LEASE_S:g} s)" in flat
    assert not re.search(r"postgresql://[^@\s/]+:[^@\s/]+@", section), "a password in a URL"
