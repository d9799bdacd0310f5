"""config/remediator.yml: defaults, then the file, then REMEDIATOR_* variables; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediator.core import defaults
from remediator.core.config import Mode, load_config
from remediator.core.units import format_duration, format_size, parse_duration, parse_size
from remediator.core.validate import validate_paths
from remediator.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "remediator.yml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "remediator.yml"
    path.write_text(text)
    return path


def test_shipped_config_declares_app_prod_with_its_bounds() -> None:
    config = load_config(SHIPPED, env={})
    target = config.target("app-prod")
    assert target is not None
    assert target.selector == {"service": "app-prod"}
    assert (target.container, target.base_url) == ("app-prod", "http://127.0.0.1:8080")
    assert target.backup_path == "/backup/models"
    assert target.max_memory == 4 * 1024**3
    assert (target.cpu_min, target.cpu_max) == (0.5, 2.0)
    assert config.mode is Mode.ACT and config.max_runs_per_hour == 5
    assert target.config_files == ("/app/config/model.yml",)  # kept with the last-known-good


def test_code_defaults_apply_without_a_file() -> None:
    config = load_config(None, env={})
    assert config.targets == []
    assert config.max_runs_per_hour == defaults.DEFAULT_MAX_RUNS_PER_HOUR
    assert config.prometheus_url == defaults.DEFAULT_PROMETHEUS_URL
    assert config.webhook_token is None


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "prometheus_url: http://file:9090\nmode: act\n")
    env = {"REMEDIATOR_PROMETHEUS_URL": "http://env:9090", "REMEDIATOR_MODE": "observe",
           "REMEDIATOR_MAX_RUNS_PER_HOUR": "2", "REMEDIATOR_STABILITY_WINDOW": "30s",
           "REMEDIATOR_WEBHOOK_TOKEN": "s3cret"}
    config = load_config(path, env=env)
    assert config.prometheus_url == "http://env:9090"
    assert config.mode is Mode.OBSERVE
    assert config.max_runs_per_hour == 2 and config.stability_window_s == 30.0
    assert config.webhook_token == "s3cret"


def test_the_token_variable_name_is_configurable(tmp_path: Path) -> None:
    path = write(tmp_path, "webhook_token_env: AM_TOKEN\n")
    assert load_config(path, env={"AM_TOKEN": "abc"}).webhook_token == "abc"


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="REMEDIATOR_PORT: expected a port number"):
        load_config(None, env={"REMEDIATOR_PORT": "99999"})


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yml:0: no such file"):
        load_config(tmp_path / "nope.yml", env={})


@pytest.mark.parametrize(("text", "where"), [
    ("mode: fix\n", ":1: mode: expected 'act' or 'observe'"),
    ("\n\nmax_runs_per_hour: 0\n", ":3: max_runs_per_hour: expected a positive integer"),
    ("prometheus_url: prometheus:9090\n",
     ":1: prometheus_url: expected an http:// or https:// URL"),
    ("promethus_url: http://x\n",
     ":1: promethus_url: unknown key (did you mean 'prometheus_url'?)"),
    ("webhook_token: abc\n", ":1: webhook_token: never put the token in the file"),
    ("stability_window: soon\n", ":1: stability_window: expected a duration"),
    ("targets:\n  - name: a\n    selector: {service: 1}\n    container: a\n"
     "    base_url: http://a\n", ":3: targets[0].selector.service: expected a string"),
    ("targets:\n  - name: a\n    container: a\n    base_url: http://a\n",
     ":2: targets[0].selector: is required"),
    ("targets:\n  - name: a\n    selector: {service: a}\n    container: a\n"
     "    base_url: http://a\n    bounds: {max_memory: lots}\n",
     ":6: targets[0].bounds.max_memory: expected a size like '512m' or '4g'"),
    ("targets:\n  - name: a\n    selector: {service: a}\n    container: a\n"
     "    base_url: http://a\n    bounds: {min_cpus: 2, max_cpus: 1}\n",
     ":6: targets[0].bounds: set both min_cpus and max_cpus"),
    ("targets:\n  - {name: a, selector: {s: a}, container: a, base_url: 'http://a'}\n"
     "  - {name: a, selector: {s: b}, container: b, base_url: 'http://b'}\n",
     ":3: targets[1]: duplicate target name 'a'"),
    ("targets:\n  - {name: a, selector: {s: a}, container: a, base_url: 'http://a'}\n"
     "  - {name: b, selector: {s: a}, container: b, base_url: 'http://b'}\n",
     ":3: targets[1]: same selector as target 'a'"),
    ("targets:\n  - name: a\n    selector: {service: a}\n    container: a\n"
     "    base_url: http://a\n    config_files: [config/model.yml]\n",
     ":6: targets[0].config_files: expected an absolute path inside the container"),
    ("targets:\n  - name: a\n    selector: {service: a}\n    container: a\n"
     "    base_url: http://a\n    config_files: /app/config/model.yml\n",
     ":6: targets[0].config_files: expected a list of absolute paths"),
    ("mode: act\nmode: observe\n", ":2: invalid YAML: duplicate key 'mode'"),
    ("- just\n- a list\n", ":1: expected a mapping, got list ['just', 'a list']"),
    ("targets:\n  - {name: [a], selector: {s: a}, container: a, base_url: 'http://a'}\n"
     "  - {name: b, selector: {s: b}, container: b, base_url: 'http://b'}\n",
     ":2: targets[0].name: expected a non-empty string, got list ['a']"),
    ("targets:\n  - {name: a, selector: {1: a, b: c}, container: a, base_url: 'http://a'}\n"
     "  - {name: b, selector: {s: b}, container: b, base_url: 'http://b'}\n",
     ":2: targets[0].selector[1]: expected a string"),
    ("targets: {a: 1}\n", ":1: targets: expected a list of targets"),
    ("targets:\n  - {name: a, selector: [s], container: a, base_url: 'http://a'}\n",
     ":2: targets[0].selector: expected a mapping, got list ['s']"),
])
def test_invalid_config_names_file_line_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert f"{path}{where}" in str(caught.value)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("10m", 600.0), ("1h30m", 5400.0), ("500ms", 0.5), ("2", 2.0), (45, 45.0),
    (1.5, 1.5), ("1d", 86400.0),
])
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10x", "m10", "-5s", True, None, [1], "10m5"])
def test_bad_durations_are_value_errors(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(("text", "size"), [
    ("512m", 512 * 1024**2), ("4g", 4 * 1024**3), ("4G", 4 * 1024**3), ("1.5GiB", 3 * 2**29),
    ("100k", 102400), (2048, 2048), ("64mb", 64 * 1024**2),
])
def test_sizes_use_dockers_binary_units(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "4x", "", -1, True, None])
def test_bad_sizes_are_value_errors(bad: object) -> None:
    with pytest.raises(ValueError, match=r"size|non-negative"):
        parse_size(bad)


def test_formatting_is_short_and_round_trips() -> None:
    assert format_duration(600) == "10m" and format_duration(7200) == "2h"
    assert format_duration(1.5) == "1.5s"
    assert format_size(4 * 1024**3) == "4g"
    assert parse_size(format_size(512 * 1024**2)) == 512 * 2**20


def test_remediator_validate_reports_a_list_target_name_instead_of_crashing(
        tmp_path: Path) -> None:
    path = write(tmp_path, "targets:\n  - {name: [a], selector: {s: a}, container: a, "
                           "base_url: 'http://a'}\n")
    problems = validate_paths([path])
    assert [str(p) for p in problems] == [
        f"{path}:2: targets[0].name: expected a non-empty string, got list ['a']"]
