"""A second Docker engine, as a second host would be: its own dockerd on this machine.

Its own socket, data root, exec root, pidfile and bridge (a distinct subnet, iptables off),
so it shares nothing with the engine at /var/run/docker.sock, which it never touches. It
also listens on 127.0.0.1 over TCP with TLS (certificates made here, by the openssl CLI).
Its images come from the first engine (`docker save | docker load`): nothing is pulled.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from remediator.adapters.engines import connect
from remediator.core.engines import TlsFiles
from tests.harness.processes import free_port

__all__ = ["Certs", "SecondEngine", "make_certs", "start_second_engine", "stop_second_engine"]

BRIDGE_CIDR = "10.212.{n}.1/24"
"""The second engine's bridge: a subnet the first engine's default pools never hand out."""

ADDRESS_POOL = "10.213.0.0/16"
"""Networks the second engine creates itself (Swarm's docker_gwbridge): kept off the first
engine's 172.17-31 pools, so no route on this machine is claimed twice."""

START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Certs:
    """PEM files: a CA, a server pair for 127.0.0.1, a client pair signed by that CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")


def make_certs(folder: Path, name: str = "test") -> Certs:
    """A fresh CA and the two pairs it signs (RSA 2048, one day), written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout",
             "ca-key.pem", "-out", "ca.pem", "-subj", f"/CN={name} test CA", cwd=folder)
    pairs = {"server": ("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                        "extendedKeyUsage=serverAuth\n"),
             "client": "extendedKeyUsage=clientAuth\n"}
    for role, extensions in pairs.items():
        (folder / f"{role}.ext").write_text(extensions)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{role}-key.pem",
                 "-out", f"{role}.csr", "-subj", f"/CN={name} {role}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{role}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-days", "1", "-out", f"{role}.pem", "-extfile",
                 f"{role}.ext", cwd=folder)
    for key in folder.glob("*-key.pem"):
        key.chmod(0o600)
    return Certs(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem",
                 folder / "client.pem", folder / "client-key.pem")


@dataclass
class SecondEngine:
    """A running private dockerd; `unix_url` and `tls_url` reach the same engine."""

    root: Path
    sock: Path
    tcp_port: int
    certs: Certs
    bridge: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def unix_url(self) -> str:
        return f"unix://{self.sock}"

    @property
    def tls_url(self) -> str:
        return f"tcp://127.0.0.1:{self.tcp_port}"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.unix_url, timeout=120)

    def tls_files(self, certs: Certs | None = None) -> TlsFiles:
        """The target's `tls` for this engine: our CA, and our client pair or, given
        another CA's `certs`, theirs (a pair the engine does not trust)."""
        certs = certs or self.certs
        return TlsFiles(str(self.certs.ca), str(certs.client_cert), str(certs.client_key))

    def tls_client(self) -> docker.DockerClient:
        return connect(self.tls_url, self.tls_files())

    def cli(self, *args: str, stdin: bytes | None = None) -> str:
        """`docker -H unix://<socket> ...`; raises with its stderr when it fails."""
        proc = subprocess.run(["docker", "-H", self.unix_url, *args], input=stdin,
                              capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr.decode().strip()}")
        return proc.stdout.decode()

    def load_image(self, image: str) -> None:
        """`docker save IMAGE | docker -H <second> load`: the first engine's copy, no pull."""
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "-H", self.unix_url, "load"], stdin=save.stdout,
                              capture_output=True)
        assert save.stdout is not None
        save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"loading {image} into the second engine failed: "
                               f"{load.stderr.decode().strip()}")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def start_second_engine(tmp: Path) -> SecondEngine:
    """Start the private dockerd (root only); raises RuntimeError with its log tail."""
    # Unix socket paths are capped near 108 bytes: keep the run folder short.
    root = Path(tempfile.mkdtemp(prefix="rmd2-", dir="/tmp"))
    certs = make_certs(tmp / "certs")
    bridge = f"rmd2{uuid.uuid4().hex[:8]}"
    subnet = BRIDGE_CIDR.format(n=int(bridge[-2:], 16) % 200 + 20)
    _ip("link", "add", bridge, "type", "bridge")
    _ip("addr", "add", subnet, "dev", bridge)
    _ip("link", "set", bridge, "up")
    port = free_port()
    (root / "daemon.json").write_text("{}")
    log = tmp / "dockerd.log"
    argv = ["dockerd", "--config-file", str(root / "daemon.json"),
            "--host", f"unix://{root}/docker.sock", "--host", f"tcp://127.0.0.1:{port}",
            "--tlsverify", "--tlscacert", str(certs.ca), "--tlscert", str(certs.server_cert),
            "--tlskey", str(certs.server_key),
            "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "dockerd.pid"), "--bridge", bridge,
            "--iptables=false", "--ip-masq=false", "--ip-forward=false",
            "--default-address-pool", f"base={ADDRESS_POOL},size=24"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    engine = SecondEngine(root, root / "docker.sock", port, certs, bridge, proc, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(docker.errors.DockerException, OSError):
            client = engine.client()
            client.ping()
            client.close()
            return engine
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-2000:]
    stop_second_engine(engine)
    raise RuntimeError(f"the second dockerd did not come up:\n{tail}")


def stop_second_engine(engine: SecondEngine) -> list[str]:
    """Leave the swarm, remove every container, stop our dockerd, remove its bridge and
    files; returns what could not be cleaned up."""
    left: list[str] = []
    if engine.proc.poll() is None:
        with contextlib.suppress(docker.errors.DockerException, OSError):
            client = engine.client()
            with contextlib.suppress(docker.errors.APIError):
                client.swarm.leave(force=True)
            for box in client.containers.list(all=True):
                with contextlib.suppress(docker.errors.DockerException):
                    box.remove(force=True, v=True)
            client.close()
        engine.proc.send_signal(signal.SIGTERM)
        try:
            engine.proc.wait(30)
        except subprocess.TimeoutExpired:
            engine.proc.kill()
            engine.proc.wait(10)
            left.append(f"second dockerd {engine.proc.pid} (killed)")
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("link", "del", engine.bridge)
    _unmount_below(engine.root)
    shutil.rmtree(engine.root, ignore_errors=True)
    if engine.root.exists():
        left.append(f"second engine files in {engine.root}")
    return left


def _unmount_below(root: Path) -> None:
    """Mounts dockerd left under its data root (overlay layers, netns files), deepest first."""
    with contextlib.suppress(OSError):
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)


