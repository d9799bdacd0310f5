"""Targets: the most specific selector wins; unmatched alerts touch nothing; bounds hold."""

from __future__ import annotations

import pytest

from remediator.core.targets import Target, check_bounds, match_target

SERVICE = Target("app-prod", {"service": "app-prod"}, "app-prod", "http://127.0.0.1:8080",
                 "/backup/models", max_memory=4 * 1024**3, cpu_min=0.5, cpu_max=2.0)
REPLICA = Target("app-prod-2", {"service": "app-prod", "instance": "app-prod-2:8080"},
                 "app-prod-2", "http://127.0.0.1:8081")
OTHER = Target("other", {"job": "app-prod"}, "other", "http://127.0.0.1:8082")


def test_an_alert_matches_its_service_target() -> None:
    labels = {"alertname": "ModelLoadFailure", "service": "app-prod", "instance": "app-prod:8080"}
    assert match_target([SERVICE, REPLICA], labels) is SERVICE


def test_the_most_specific_selector_wins_for_one_replica() -> None:
    labels = {"service": "app-prod", "instance": "app-prod-2:8080"}
    assert match_target([SERVICE, REPLICA], labels) is REPLICA
    assert match_target([REPLICA, SERVICE], labels) is REPLICA


def test_an_alert_matching_no_target_gets_none() -> None:
    assert match_target([SERVICE, REPLICA], {"service": "billing"}) is None
    assert match_target([], {"service": "app-prod"}) is None


def test_equally_specific_selectors_go_to_the_first_declared() -> None:
    labels = {"service": "app-prod", "job": "app-prod"}
    assert match_target([OTHER, SERVICE], labels) is OTHER


def test_an_empty_selector_never_matches_everything() -> None:
    loose = Target("loose", {}, "x", "http://x")
    assert match_target([loose], {"service": "app-prod"}) is None


def test_resources_within_bounds_pass() -> None:
    assert check_bounds(SERVICE, memory=4 * 1024**3, memory_swap=4 * 1024**3, cpus=2.0) == []
    assert check_bounds(SERVICE, memory=1024**3, memory_swap=2 * 1024**3, cpus=0.5) == []


def test_unlimited_swap_is_refused_whatever_the_target_declares() -> None:
    refused = ("memory_swap", "-1 (unlimited swap) is refused: the target's max_memory caps "
               "memory plus swap; give a size up to it")
    assert check_bounds(SERVICE, memory=1024**3, memory_swap=-1) == [refused]
    assert check_bounds(REPLICA, memory=1024**3, memory_swap=-1) == [
        ("memory", "target 'app-prod-2' declares no max_memory, so it cannot be changed"),
        refused]


@pytest.mark.parametrize(("kwargs", "arg", "message"), [
    ({"memory": 8 * 1024**3}, "memory", "8g exceeds the max_memory 4g"),
    ({"memory_swap": 8 * 1024**3}, "memory_swap", "8g exceeds the max_memory 4g"),
    ({"memory": 2 * 1024**3, "memory_swap": 1024**3}, "memory_swap", "at least memory"),
    ({"cpus": 4.0}, "cpus", "outside the range 0.5..2"),
    ({"cpus": 0.1}, "cpus", "outside the range 0.5..2"),
])
def test_resources_beyond_bounds_are_refused(kwargs: dict[str, float], arg: str,
                                             message: str) -> None:
    problems = check_bounds(SERVICE, **kwargs)  # type: ignore[arg-type]
    assert [p for p in problems if p[0] == arg and message in p[1]]


def test_a_target_without_bounds_cannot_be_resized() -> None:
    assert check_bounds(REPLICA, memory=1024**3)[0][1].endswith("so it cannot be changed")
    assert check_bounds(REPLICA, cpus=1.0)[0][1].endswith("so it cannot be changed")


def test_write_paths_default_to_the_model_dir_backup_and_config_folders() -> None:
    from remediator.core.targets import check_write_path

    target = Target(name="t", selector={"service": "t"}, container="t", base_url="http://t",
                    backup_path="/backup/models", config_files=("/app/config/model.yml",))
    assert target.write_prefixes() == ("/app/models", "/app/config", "/backup/models")
    assert check_write_path(target, "/app/models/best_model.pth") is None
    assert check_write_path(target, "/app/config/model.yml") is None
    for path in ("/etc/passwd", "/app/models/../../etc/x", "/app/modelsX/y", "relative/x",
                 "/app/models/\x00"):
        assert check_write_path(target, path), path


def test_declared_write_paths_replace_the_default() -> None:
    from remediator.core.config import check_config_data
    from remediator.core.targets import check_write_path

    values, problems = check_config_data({"targets": [{
        "name": "t", "selector": {"service": "t"}, "container": "t", "base_url": "http://t",
        "backup_path": "/backup", "write_paths": ["/srv/data"]}]}, "remediator.yml")
    assert problems == []
    (target,) = values["targets"]
    assert check_write_path(target, "/srv/data/x") is None
    assert "outside the paths" in str(check_write_path(target, "/app/models/x"))
    _, problems = check_config_data({"targets": [{
        "name": "t", "selector": {"service": "t"}, "container": "t", "base_url": "http://t",
        "write_paths": ["../etc"]}]}, "remediator.yml")
    assert problems
