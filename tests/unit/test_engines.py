"""Targets on other engines: docker_host / tls / swarm_service in the config, `remediator
validate` naming the target of a TLS file it cannot read, a Swarm alert's replica, and an
engine that does not answer failing only its own targets (a real socket where nothing
listens: no Docker needed)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from remediator.adapters.engines import Engines
from remediator.adapters.swarm import pick_task
from remediator.core.config import load_config
from remediator.core.targets import Target
from remediator.errors import ConfigError, RuntimeError_, TargetNotFound
from remediator.service.cli import main

TARGET = """
  - name: {name}
    selector: {{service: {name}}}
    base_url: http://127.0.0.1:8080
{extra}"""


def config(tmp_path: Path, *targets: tuple[str, str]) -> Path:
    body = "".join(TARGET.format(name=name, extra=extra) for name, extra in targets)
    path = tmp_path / "remediator.yml"
    path.write_text(f"targets:{body}")
    return path


def pems(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")


TLS = ("    docker_host: tcp://10.0.0.5:2376\n"
       "    tls: {ca: ca.pem, cert: cert.pem, key: key.pem}\n    container: app\n")


def test_a_target_names_its_engine_and_tls_files_relative_to_the_config(tmp_path: Path) -> None:
    pems(tmp_path)
    path = config(tmp_path, ("far", TLS),
                  ("local", "    docker_host: unix:///run/other.sock\n    container: app\n"),
                  ("svc", "    swarm_service: app-svc\n"), ("here", "    container: app\n"))
    targets = {t.name: t for t in load_config(path, env={}).targets}
    assert targets["far"].docker_host == "tcp://10.0.0.5:2376"
    assert targets["far"].tls is not None
    assert targets["far"].tls.ca == str(tmp_path / "ca.pem")
    assert targets["far"].tls.key == str(tmp_path / "key.pem")
    assert targets["local"].docker_host == "unix:///run/other.sock"
    assert targets["local"].tls is None
    assert targets["svc"].swarm_service == "app-svc" and targets["svc"].container == "app-svc"
    assert targets["here"].docker_host is None and targets["here"].swarm_service is None


def test_validate_names_the_target_of_a_missing_or_unreadable_tls_file(tmp_path: Path) -> None:
    pems(tmp_path)
    (tmp_path / "key.pem").unlink()
    path = config(tmp_path, ("far", TLS))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert "targets[0].tls.key" in message and "target 'far'" in message, message
    assert f"{tmp_path / 'key.pem'}: no such file" in message, message

    result = CliRunner().invoke(main, ["validate", "--config", str(path), str(path)])
    assert result.exit_code == 1, result.output
    assert "target 'far'" in result.output and "key.pem: no such file" in result.output


def test_validate_refuses_a_tcp_engine_without_tls_and_tls_on_a_socket(tmp_path: Path) -> None:
    pems(tmp_path)
    path = config(tmp_path,
                  ("bare", "    docker_host: tcp://10.0.0.5:2375\n    container: app\n"),
                  ("sock", "    docker_host: unix:///run/x.sock\n"
                           "    tls: {ca: ca.pem, cert: cert.pem, key: key.pem}\n"
                           "    container: app\n"),
                  ("odd", "    docker_host: http://10.0.0.5\n    container: app\n"),
                  ("both", "    swarm_service: s\n    container: app\n"),
                  ("none", ""))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert "target 'bare': a tcp:// engine needs tls" in message, message
    assert "target 'sock': tls applies to a tcp:// docker_host only" in message, message
    assert "expected unix:///path/to/docker.sock or tcp://host:2376" in message, message
    assert "give container or swarm_service, not both" in message, message
    assert "targets[4].container: is required" in message, message


def test_a_swarm_alert_acts_on_its_own_replica_others_keep_theirs() -> None:
    svc = Target(name="svc", selector={"service": "svc"}, container="svc",
                 base_url="http://x", swarm_service="svc")
    plain = Target(name="p", selector={}, container="p", base_url="http://x")
    assert svc.for_alert({"instance": "svc.2:8080"}).instance == "svc.2:8080"
    assert plain.for_alert({"instance": "svc.2:8080"}) is plain

    def task(slot: int, cid: str, state: str = "running") -> dict[str, object]:
        return {"ID": f"task{slot}", "Slot": slot, "DesiredState": "running",
                "Status": {"State": state, "ContainerStatus": {"ContainerID": cid}}}

    tasks = [task(1, "aaa111"), task(2, "bbb222"), task(3, "ccc333", state="failed")]
    published = {"aaa111": {"18001"}, "bbb222": {"18002"}}
    assert pick_task("svc", tasks, "svc.2:8080", published)["Slot"] == 2
    assert pick_task("svc", tasks, "127.0.0.1:18001", published)["Slot"] == 1
    assert pick_task("svc", tasks, "bbb222", published)["Slot"] == 2
    assert pick_task("svc", tasks[:1], None, published)["Slot"] == 1
    with pytest.raises(TargetNotFound, match=r"matches the alert's instance 'svc.3:8080' "
                                              r"\(replicas: svc.1, svc.2\)"):
        pick_task("svc", tasks, "svc.3:8080", published)
    with pytest.raises(TargetNotFound, match="2 replicas and the alert has no instance"):
        pick_task("svc", tasks, None, published)


def test_an_engine_that_does_not_answer_fails_its_own_targets_only(tmp_path: Path) -> None:
    dead = tmp_path / "dead.sock"  # a socket file where nothing accepts
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(dead))
    listener.close()
    far = Target(name="far", selector={"service": "far"}, container="app",
                 base_url="http://x", docker_host=f"unix://{dead}")
    near = Target(name="near", selector={"service": "near"}, container="app",
                  base_url="http://x")
    engines = Engines([far, near])
    assert engines.engine(far) is not engines.engine(near)
    with pytest.raises(RuntimeError_) as caught:
        engines.call("docker.inspect", {}, far, 5)
    message = str(caught.value)
    assert message.startswith("docker.inspect: Docker engine unix://"), message
    assert f"{dead}" in message and "(target 'far') did not answer" in message, message
    states = engines.states()
    assert states[f"unix://{dead}"]["up"] is False
    assert states[f"unix://{dead}"]["targets"] == ["far"]
    assert "target 'far'" in str(states[f"unix://{dead}"]["error"])
