"""``modelserver use-model NAME``: the runbook's scenario 5 "update configuration to use the
converted model", in place, without a restart.

``model_path`` in config/model.yml becomes NAME (the file's other lines and comments kept),
then the app's own ``POST /model/reload`` reads the config again (no second torch import),
and the command waits for the load to end: the app must then serve NAME, READY. It exits
non-zero, touching nothing, where the file cannot carry the change (MODEL_PATH set in the
environment overrides it); the playbook then recreates the container with MODEL_PATH.

Standard library only, like ``modelserver diagnose``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "point_config", "reload_and_wait"]

POLL_S = 0.05
"""How often /model/health is asked while the reload runs."""

HTTP_TIMEOUT_S = 10.0
"""How long the app may take to answer one request."""

_VALUE = re.compile(r"^(model_path\s*:\s*)(\"[^\"]*\"|'[^']*'|[^\s#]*)")


class UseModelError(Exception):
    """The change cannot be made or did not take; the message says why."""


def point_config(config_file: Path, name: str, env: Mapping[str, str]) -> str:
    """Set ``model_path: NAME`` in the file; the line written."""
    if env.get("MODEL_PATH"):
        raise UseModelError(f"MODEL_PATH={env['MODEL_PATH']} in the environment overrides "
                            f"{config_file}")
    lines = config_file.read_text().splitlines()
    found = [i for i, text in enumerate(lines) if re.match(r"model_path\s*:", text)]
    for i in found:  # the value only: a comment after it stays
        lines[i] = _VALUE.sub(lambda m: m.group(1) + name, lines[i])
    if not found:
        lines.append(f"model_path: {name}")
    config_file.write_text("\n".join(lines) + "\n")
    return f"model_path: {name}"


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as answer:
        body: dict[str, Any] = json.load(answer)
    return body


def reload_and_wait(url: str, name: str, wait_s: float) -> tuple[str, str]:
    """POST /model/reload, then poll /model/health until the load ends.

    (the reload's answer, the path served); UseModelError when the app does not serve NAME."""
    request = urllib.request.Request(url + "/model/reload", method="POST")
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:
        accepted = f"{answer.status} {answer.read().decode().strip()}"
    deadline = time.monotonic() + wait_s
    while True:  # accepted is not loaded
        health = _get(url + "/model/health")
        loading = health.get("loading") or health.get("state") == "LOADING"
        if not loading or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    path = str(health.get("model_path") or "")
    if not path.endswith("/" + name) or health.get("state") != "READY":
        raise UseModelError(f"after the reload the app serves {path or 'nothing'} "
                            f"({health.get('state')}: {health.get('reason')}), not {name}")
    return accepted, path


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    cli = argparse.ArgumentParser(prog="modelserver use-model", description=__doc__.split(
        "\n\n")[0])
    cli.add_argument("name", help="the model file to serve, e.g. best_model_converted.pth")
    cli.add_argument("--config", type=Path,
                     default=Path(env.get("MODEL_CONFIG") or "/app/config/model.yml"))
    cli.add_argument("--app-url", default=f"http://127.0.0.1:{env.get('PORT') or '8080'}")
    cli.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the load")
    args = cli.parse_args(argv)
    try:
        line = point_config(args.config, args.name, env)
        accepted, path = reload_and_wait(args.app_url.rstrip("/"), args.name, args.wait)
    except (UseModelError, OSError) as exc:
        print(f"modelserver use-model: {exc}", file=sys.stderr)
        return 1
    print(f"{args.config}: {line}; POST /model/reload: {accepted}")
    print(f"serving {path}")
    return 0


if __name__ == "__main__":  # python -m mobile_multimodal.use_model
    sys.exit(main())
