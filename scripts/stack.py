#!/usr/bin/env python3
"""`make up`, `make down`, `make clean` and `make demo`: the stack on this machine.

app-prod runs in Docker (127.0.0.1:8080); Prometheus (127.0.0.1:9090), Alertmanager
(127.0.0.1:9093) and Remediator (127.0.0.1:9096) run as host processes from the shipped
configs, with only addresses changed. State (store, Prometheus and Alertmanager data, logs,
the webhook token, the monitoring password and web config) lives in the state folder, which
`down` keeps and `clean` removes. Prometheus and Alertmanager answer only with basic auth
(user `monitoring`, the random password in the state folder's monitoring-password, 0600);
their lifecycle API is off.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))  # devstack

from devstack.stack import (
    AppSpec,
    MonitoringAuth,
    app_container_kwargs,
    monitoring_auth,
    record_known_good,
    render_alertmanager_config,
    render_alerts,
    render_prometheus_config,
)
from remediator.adapters.private_files import write_private
from remediator.errors import RemediatorError

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PORTS = {"app-prod": 8080, "prometheus": 9090, "alertmanager": 9093, "remediator": 9096}
ADDRESSES = {
    "app-prod:8080": "127.0.0.1:8080", "alertmanager:9093": "127.0.0.1:9093",
    "remediator:9096": "127.0.0.1:9096", "prometheus:9090": "127.0.0.1:9090",
}


class StackError(Exception):
    """A step of the stack failed; the message names it and what to do."""


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def wait_for(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if check():
                return
        time.sleep(0.5)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise StackError(f"{what} not ready after {timeout:.0f}s{tail}")


def http_ok(url: str, auth: tuple[str, str] | None = None) -> Callable[[], bool]:
    return lambda: requests.get(url, timeout=2, auth=auth).status_code == 200


# -- host processes -----------------------------------------------------------------------
def pid_alive(pidfile: Path) -> int | None:
    if not pidfile.exists():
        return None
    pid = int(pidfile.read_text().strip() or 0)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return None
    return pid


def spawn(state: Path, name: str, argv: list[str], env: dict[str, str] | None = None) -> Path:
    pidfile, log = state / f"{name}.pid", state / "logs" / f"{name}.log"
    if pid_alive(pidfile):
        say(f"{name}: already running (pid {pidfile.read_text().strip()})")
        return log
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    pidfile.write_text(str(proc.pid))
    return log


def stop_process(state: Path, name: str) -> None:
    pidfile = state / f"{name}.pid"
    pid = pid_alive(pidfile)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        for _ in range(40):
            if pid_alive(pidfile) is None:
                break
            time.sleep(0.25)
        else:
            os.kill(pid, signal.SIGKILL)
        say(f"{name}: stopped")
    pidfile.unlink(missing_ok=True)


def token(state: Path) -> str:
    path = state / "webhook-token"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32))  # 0600 from its creation
    return path.read_text().strip()


def start_remediator(state: Path, auth: MonitoringAuth, db: Path | None = None) -> None:
    argv = [str(VENV_BIN / "remediator"), "serve", "--host", "127.0.0.1", "--port", "9096",
            "--db", str(db or state / "remediator.db"), "--config", "config/remediator.yml",
            "--playbooks", "playbooks"]
    log = spawn(state, "remediator", argv, {
        "REMEDIATOR_WEBHOOK_TOKEN": token(state),
        "REMEDIATOR_MONITORING_PASSWORD_FILE": str(auth.password_file)})
    wait_for("remediator", http_ok("http://127.0.0.1:9096/readyz"), 60, log)


def start_alertmanager(state: Path, auth: MonitoringAuth) -> None:
    folder = state / "alertmanager"
    folder.mkdir(exist_ok=True)
    token(state)
    warn_oncall_unset(os.environ)
    write_private(folder / "alertmanager.yml", render_alertmanager_config(
        (ROOT / "monitoring/alertmanager.yml").read_text(),
        "http://127.0.0.1:9096/api/v1/alerts", str(state / "webhook-token"),
        oncall=os.environ))
    # Its notification log says what it sent before `make down`: an alert that was firing
    # then (the stack stopped before it resolved) would not be sent again when it fires
    # after `make up` until repeat_interval (1h; reconciliation finds it within 3 min).
    # Remediator takes a repeat as a repeat, so start without it; silences are kept.
    (folder / "data" / "nflog").unlink(missing_ok=True)
    argv = [shutil.which("prometheus-alertmanager") or "prometheus-alertmanager",
            f"--config.file={folder / 'alertmanager.yml'}", f"--storage.path={folder / 'data'}",
            "--web.listen-address=127.0.0.1:9093", f"--web.config.file={auth.web_config}",
            "--cluster.listen-address="]
    log = spawn(state, "alertmanager", argv)
    wait_for("alertmanager", http_ok("http://127.0.0.1:9093/-/ready", auth.pair), 60, log)


ONCALL_REQUIRED = ("ONCALL_EMAIL", "ONCALL_SMARTHOST")
"""What the human route's e-mail needs (alertmanager.yml's oncall receiver)."""


def warn_oncall_unset(env: Mapping[str, str]) -> None:
    """Say so when the human route cannot reach anyone: Alertmanager would send on-call's
    alerts (RemediatorDown, CriticalAlertUnresolved, ...) to the shipped placeholders."""
    unset = [name for name in ONCALL_REQUIRED if not env.get(name)]
    if unset:
        say(f"WARNING: {' and '.join(unset)} not set: alerts for people (RemediatorDown, "
            f"CriticalAlertUnresolved, ...) will reach no one. Set ONCALL_EMAIL (on-call's "
            f"address) and ONCALL_SMARTHOST (an SMTP relay, host:port), then "
            f"`make down && make up`")


def start_prometheus(state: Path, auth: MonitoringAuth) -> None:
    folder = state / "prometheus"
    folder.mkdir(exist_ok=True)
    (folder / "alerts.yml").write_text(render_alerts((ROOT / "monitoring/alerts.yml").read_text()))
    write_private(folder / "prometheus.yml", render_prometheus_config(
        (ROOT / "monitoring/prometheus.yml").read_text(), ADDRESSES, auth=auth))
    argv = [shutil.which("prometheus") or "prometheus",
            f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
            "--web.listen-address=127.0.0.1:9090", f"--web.config.file={auth.web_config}"]
    log = spawn(state, "prometheus", argv)
    wait_for("prometheus", http_ok("http://127.0.0.1:9090/-/ready", auth.pair), 60, log)


# -- app-prod ------------------------------------------------------------------------------
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise StackError(f"Docker engine unreachable ({exc}); run `make docker` as root") from exc


def start_app(client: docker.DockerClient, spec: AppSpec) -> None:
    """app-prod up and healthy. A container `up` creates runs on the kept model volumes; if
    it does not load because the primary model file is not the one shipped (an earlier
    `make demo` broke it, and the fix lived in the container `down` removed), the volumes
    are recreated from the image, saying so. Any other failure (a slow or out-of-memory
    load, a broken image) leaves the volumes alone and fails saying why; so does a
    container that was already there: its state is someone's."""
    try:
        box = client.containers.get(spec.name)
        if box.status != "running":
            box.start()
        say(f"{spec.name}: container present ({box.short_id})")
        created = False
    except docker.errors.NotFound:
        box = run_app(client, spec, "container started")
        created = True
    model = settled_model_health(spec, 180)
    if model.get("state") == "READY":
        return
    why = f"{model.get('state')}: {model.get('reason') or 'no reason given'}"
    if not created:
        raise StackError(f"{spec.name} is {why}. `make down && make up` recreates it; "
                         "`make clean && make up` also resets its model volumes")
    if model.get("checksum_ok") is True:  # the files are the shipped ones: not their fault
        raise StackError(f"{spec.name} is {why}; its model files are intact (checksums "
                         f"match), so {spec.models_volume} is kept. See `docker logs "
                         f"{spec.name}`")
    say(f"{spec.name}: {why}")
    renew_app(client, spec, box, f"{spec.name}: the primary model in the kept volume is not "
              f"the one shipped (an earlier `make demo`?); recreating {spec.models_volume} "
              f"and {spec.backup_volume} from the image")


def run_app(client: docker.DockerClient, spec: AppSpec, what: str) -> Any:
    box = client.containers.run(**app_container_kwargs(spec, {"org.devstack.stack": "up"}))
    say(f"{spec.name}: {what} ({box.short_id})")
    return box


def renew_app(client: docker.DockerClient, spec: AppSpec, box: Any, why: str) -> None:
    """Say why, then app-prod and its model volumes anew from the image, until healthy."""
    say(why)
    recreate_volumes(client, spec, box)
    run_app(client, spec, "container started on fresh volumes")
    wait_for(f"{spec.name} /health", health_is("healthy", spec.port), 180)


def recreate_volumes(client: docker.DockerClient, spec: AppSpec, box: Any) -> None:
    """Remove app-prod and its two volumes (they come back from the image with the next
    container); refuse, before removing anything, if another container uses them."""
    names = (spec.models_volume, spec.backup_volume)
    users = {c.name for name in names
             for c in client.containers.list(all=True, filters={"volume": name})} - {box.name}
    if users:
        raise StackError(f"{', '.join(sorted(users))} also use(s) {' and '.join(names)}; "
                         "remove them first (or `make clean`)")
    try:
        box.remove(force=True)
        for name in names:
            with contextlib.suppress(docker.errors.NotFound):
                client.volumes.get(name).remove(force=True)
    except docker.errors.APIError as exc:
        raise StackError(f"could not recreate {spec.name}'s volumes: {exc}") from exc


def settled_model_health(spec: AppSpec, timeout: float) -> dict[str, Any]:
    """/model/health once the app answers and its load has an outcome."""
    url = f"http://127.0.0.1:{spec.port}/model/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            model = dict(requests.get(url, timeout=2).json())
            if not model.get("loading") and model.get("state") != "LOADING":
                return model
        time.sleep(0.5)
    raise StackError(f"{spec.name} /model/health: no load outcome after {timeout:.0f}s")


def health_is(status: str, port: int) -> Callable[[], bool]:
    def check() -> bool:
        return bool(requests.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                    .get("status") == status)
    return check


# -- commands -------------------------------------------------------------------------------
def known_good(client: docker.DockerClient, state: Path, spec: AppSpec,
               db: Path | None = None) -> None:
    """app-prod, healthy as shipped, is its last-known-good (what a rollback goes back to)."""
    try:
        image = record_known_good(client, ROOT / "config" / "remediator.yml",
                                  db or state / "remediator.db", spec.name)
    except RemediatorError as exc:
        raise StackError(f"recording {spec.name}'s last-known-good: {exc}") from exc
    say(f"{spec.name}: recorded as last-known-good (image {image[:19]}, its volumes)")


def up(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    client = docker_client()
    start_app(client, AppSpec())
    known_good(client, state, AppSpec())
    auth = monitoring_auth(state)
    start_remediator(state, auth)
    start_alertmanager(state, auth)
    start_prometheus(state, auth)
    print()
    print("Running:")
    print("  app-prod      http://127.0.0.1:8080/health   (Docker container app-prod)")
    print("  prometheus    http://127.0.0.1:9090          (alerts: /alerts)")
    print("  alertmanager  http://127.0.0.1:9093")
    print(f"  (both: user {auth.username}, password in {auth.password_file})")
    print("  remediator    http://127.0.0.1:9096/api/v1/executions  (token: "
          f"{state / 'webhook-token'})")
    print(f"State: {state}/   Logs: {state / 'logs'}/   Stop: make down   Try: make demo")


def down(state: Path) -> None:
    for name in ("prometheus", "alertmanager", "remediator"):
        stop_process(state, name)
    with contextlib.suppress(StackError):
        client = docker_client()
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get("app-prod").remove(force=True)
            say("app-prod: removed (its model volumes are kept)")


def clean(state: Path) -> None:
    down(state)
    with contextlib.suppress(StackError):
        client = docker_client()
        for name in (AppSpec().models_volume, AppSpec().backup_volume):
            with contextlib.suppress(docker.errors.NotFound):
                client.volumes.get(name).remove(force=True)
    say("app-prod volumes removed")


def api(state: Path, path: str) -> Any:
    headers = {"Authorization": f"Bearer {token(state)}"}
    return requests.get(f"http://127.0.0.1:9096{path}", headers=headers, timeout=5).json()


def demo(state: Path, scenario: str) -> None:
    from devstack.demo import run_demo

    if pid_alive(state / "remediator.pid") is None:
        raise StackError("the stack is not up: run `make up` first")
    client = docker_client()
    if as_shipped(client, AppSpec()):
        known_good(client, state, AppSpec())
    auth = monitoring_auth(state)  # the password `up` made; its credentials in the URL
    try:
        run_demo(client, scenario, lambda path: api(state, path),
                 prometheus_url=f"http://{auth.username}:{auth.password}@127.0.0.1:9090",
                 app_url="http://127.0.0.1:8080")
    except (TimeoutError, ValueError, RuntimeError) as exc:
        raise StackError(str(exc)) from exc


DEMO_ALL = ["missing-file", "corrupted-file", "corrupted-backup", "oom", "cuda", "permissions",
            "old-format", "missing-dependency", "invalid-config", "slow-load", "memory-growth"]
"""Every scenario the README lists for `make demo`, in its order."""
TABLE = ("scenario", "alert", "scenario named", "fault→firing s", "firing→fix s",
         "fix→healthy s", "total s")


def demo_all(state: Path) -> int:
    """Every README scenario in turn, on the stack `make up` started; prints the table and
    returns 1 if Remediator did not repair one.

    The shipped budget (5 runs per target per hour, 5 per playbook) and stability window
    (2 min) stay as they are, and every run is within them: before each scenario Remediator
    restarts on a fresh store of its own (STATE/demo-all/NN-scenario.db), so each is the first
    run of its hour and no re-fire of the previous scenario's incident. It restarts once the
    previous alert has cleared (its reconciliation then finds nothing firing), and app-prod
    is recorded as last-known-good in that store as `make up` does. The production store
    (STATE/remediator.db) is untouched; Remediator is back on it at the end.
    """
    from devstack.demo import DemoFailed, DemoResult, run_demo, wait_alerts_clear

    if pid_alive(state / "remediator.pid") is None:
        raise StackError("the stack is not up: run `make up` first")
    client, spec, results = docker_client(), AppSpec(), []
    auth = monitoring_auth(state)  # the password `up` made; its credentials in the URL
    prometheus_url = f"http://{auth.username}:{auth.password}@127.0.0.1:9090"
    runs = state / "demo-all"
    runs.mkdir(parents=True, exist_ok=True)
    try:
        for number, scenario in enumerate(DEMO_ALL, 1):
            print(f"\n== {number}/{len(DEMO_ALL)}: make demo SCENARIO={scenario}", flush=True)
            db = runs / f"{number:02d}-{scenario}.db"
            remove_store(db)
            try:
                as_shipped(client, spec)
                wait_alerts_clear(prometheus_url, timeout=600)
                stop_process(state, "remediator")
                start_remediator(state, auth, db)
                known_good(client, state, spec, db)
                results.append(run_demo(client, scenario, lambda path: api(state, path),
                                        prometheus_url=prometheus_url,
                                        app_url="http://127.0.0.1:8080"))
            except DemoFailed as exc:
                print(f"  NOT REPAIRED: {exc}", flush=True)
                results.append(exc.result)
            except (StackError, TimeoutError, RuntimeError) as exc:
                print(f"  NOT REPAIRED: {exc}", flush=True)
                results.append(DemoResult(scenario, "-", problem=str(exc)))
    finally:
        # Back on the production store, with app-prod as shipped and recorded there as its
        # last-known-good: the record in it is of the incarnation before the scenarios
        # recreated app-prod's volumes, and a rollback refuses another incarnation's.
        stop_process(state, "remediator")
        try:
            as_shipped(client, spec)
            known_good(client, state, spec)
        finally:
            start_remediator(state, auth)
    print_table(results)
    failed = [r.scenario for r in results if not r.repaired]
    if failed:
        print(f"make demo-all: not repaired by Remediator: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"make demo-all: all {len(results)} scenarios repaired by Remediator")
    return 0


def remove_store(db: Path) -> None:
    """A store gone with its SQLite -wal/-shm files and serve's lock file (a -wal left
    behind would be replayed into the next store of the same name)."""
    from remediator.adapters.store_lock import LOCK_SUFFIX

    for suffix in ("", "-wal", "-shm", LOCK_SUFFIX):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


def print_table(results: list[Any]) -> None:
    rows = [list(TABLE)] + [r.row() for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE))]
    print()
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
              + " |")
        if index == 0:
            print("| " + " | ".join("-" * w for w in widths) + " |")


def as_shipped(client: docker.DockerClient, spec: AppSpec) -> bool:
    """app-prod as `make up` ships it, so the demo's fault breaks what it means to break:
    an earlier demo's fix (a converted model, a raised limit) is undone by recreating the
    container and its model volumes from the image, saying why. True when it did."""
    from devstack.demo import drift
    from remediator.core.units import parse_size

    try:
        box = client.containers.get(spec.name)
    except docker.errors.NotFound as exc:
        raise StackError(f"{spec.name} is not running: run `make up` first") from exc
    image_env = client.images.get(spec.image).attrs["Config"].get("Env") or []
    changed = drift(box, image_env, parse_size(spec.memory), settled_model_health(spec, 180))
    if not changed:
        return False
    renew_app(client, spec, box, f"{spec.name} is not as `make up` ships it "
              f"({'; '.join(changed)}), an earlier demo's fix?; recreating it, "
              f"{spec.models_volume} and {spec.backup_volume} from the image first")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "clean", "demo", "demo-all"])
    parser.add_argument("--state", type=Path, default=ROOT / ".state")
    parser.add_argument("--scenario", default="missing-file")
    args = parser.parse_args(argv)
    state = args.state.resolve()
    try:
        if args.command == "demo-all":
            return demo_all(state)
        if args.command == "demo":
            demo(state, args.scenario)
        else:
            {"up": up, "down": down, "clean": clean}[args.command](state)
    except StackError as exc:
        print(f"make {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
