"""remediator.core is pure: importing all of it pulls in no Flask, Docker, HTTP or sockets."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("flask", "werkzeug", "docker", "requests", "urllib3", "http.client", "socket",
             "sqlite3", "torch")

PROBE = f"""
import importlib, pkgutil, sys
import remediator.core as core
names = [m.name for m in pkgutil.iter_modules(core.__path__, "remediator.core.")]
for name in names:
    importlib.import_module(name)
assert "remediator.core.runner" in names and "remediator.core.alerts" in names, names
loaded = [m for m in {FORBIDDEN!r} if m in sys.modules]
print(",".join(loaded))
"""


def test_core_imports_no_flask_docker_requests_or_sockets() -> None:
    # A fresh interpreter: this test process has other modules loaded already.
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"remediator.core pulled in: {done.stdout.strip()}"
