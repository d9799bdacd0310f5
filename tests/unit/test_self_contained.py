"""Nothing the project runs reads a path outside its own tree.

A fresh clone has no `shared/` folder beside it and none of the author's host paths: every
tracked file under app/, tests/, scripts/, bench/, .ci/ and the Makefile may name paths inside
the repository (relative) or inside the containers it builds (allow-listed below), nothing else.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["app", "tests", "scripts", "bench", ".ci", "Makefile"]

# A sibling folder of the clone: "../shared", or pathlib's `.parent / "shared"` spelling.
OUTSIDE_SIBLING = re.compile(r"\.\./shared\b|\.parent\s*/\s*[\"']shared\b")

# An absolute path under a top-level directory of a host (not a URL path like /health: the
# character before the slash may not be a host, a dot, a variable or another path segment).
HOST_TOPS = ("bin|boot|dev|etc|home|lib|lib64|media|mnt|opt|proc|root|run|sbin|srv|sys|tmp|"
             "usr|var|work|workspace|Users|private|app|backup|data|nix|snap")
ABSOLUTE = re.compile(rf"(?<![\w.:/~$)}}\-])/(?:{HOST_TOPS})(?:/[\w.\-]*)*")

# Paths that exist inside the images or on every Linux host, with the reason each is fine.
ALLOWED = (
    "/app",                    # the serving image's work dir: /app/models, /app/config, ...
    "/backup/models",          # the image's backup volume the runbook restores from
    "/opt/venv",               # the image's virtualenv
    "/opt/model-store",        # the image's clean model store (MODEL_STORE)
    "/etc",                    # system configuration (and hostile-input test data)
    "/tmp",                    # scratch space
    "/proc",                   # kernel interfaces read inside the container
    "/sys/fs/cgroup",
    "/dev/null", "/dev/full", "/dev/zero", "/dev/nvidia",
    "/dev/nvidiactl", "/dev/nvidia0",  # where a GPU shows in a container (modelserver diagnose)
    "/usr/bin", "/usr/local/bin", "/bin/bash",  # shebangs and PATH values
    "/var/run/docker.sock",    # the Docker Engine socket
    "/run/secrets",            # Compose secrets, inside the containers (docker-compose.yml)
    "/usr/lib/postgresql",     # Debian's PostgreSQL programs (postgresql-15, `make host`)
    "/root/.cache",            # an environment value inside the container (redaction tests)
)


def allowed(path: str) -> bool:
    return any(path == ok or path.startswith(ok + "/") for ok in ALLOWED)


def offences(text: str) -> list[str]:
    """The outside references in `text`, as 'line N: what'."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        found += [f"line {number}: {m.group(0)}" for m in OUTSIDE_SIBLING.finditer(line)]
        found += [f"line {number}: {m.group(0)}" for m in ABSOLUTE.finditer(line)
                  if not allowed(m.group(0))]
    return found


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "--", *SCANNED], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [ROOT / name for name in out.split("\0") if name]


@pytest.mark.parametrize("line", [
    'FIXTURES = ROOT.parent / "shared" / "fixtures" / "alertmanager"',
    "ROOT.parent / 'shared/fixtures/alertmanager/firing.json'",
    'open("../shared/runbooks/model-load-failure.md")',
    'FIXTURES = Path("/work/shared/fixtures/alertmanager")',
    "cp /home/alice/models/best_model.pth .",
    "--volume /srv/models:/app/models",
])
def test_the_scan_catches_outside_references(line: str) -> None:
    assert offences(line), line


@pytest.mark.parametrize("line", [
    "docker cp best_model.pth app-prod:/app/models/best_model.pth",
    'requests.get(f"{url}/health")', "http://127.0.0.1:9090/api/v1/alerts",
    "@$(VENV)/bin/python -m pytest", "#!/usr/bin/env python3",
    'FIXTURES = ROOT / "tests" / "fixtures" / "alertmanager"', "../../etc/passwd",
])
def test_the_scan_lets_repository_and_container_paths_through(line: str) -> None:
    assert not offences(line), offences(line)


def test_no_tracked_file_refers_outside_the_repository() -> None:
    files = tracked_files()
    assert files, f"git ls-files found nothing under {SCANNED} in {ROOT}"
    me = Path(__file__).resolve()
    bad = {}
    for path in files:
        if path.resolve() == me or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary: models, images
        if found := offences(text):
            bad[str(path.relative_to(ROOT))] = found
    assert not bad, ("files refer to paths outside the repository (copy what they need into "
                     f"the tree, e.g. tests/fixtures/): {bad}")
