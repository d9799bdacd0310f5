#!/usr/bin/env python3
"""Fetch a published model from a model store, verify its sha256 and install it.

Runbook scenario 1: ``python scripts/download_models.py --model int2_quantized --force``.
A thin wrapper: the logic is ``mobile_multimodal.store`` (runs from the repo and from
/app/scripts in the container; the default store is the ``models/`` beside this folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    import mobile_multimodal  # noqa: F401 - installed (container, venv)?
except ImportError:  # a plain checkout: use the source root
    sys.path.insert(0, str(ROOT / "app"))

try:
    from mobile_multimodal.store import main
except ModuleNotFoundError as missing:  # e.g. torch, outside the virtualenv and the image
    if (missing.name or "").startswith("mobile_multimodal"):
        raise
    sys.exit(f"download_models.py: this Python ({sys.executable}) cannot import {missing.name}; "
             "run it with the project's virtualenv (make venv; .venv/bin/python "
             "scripts/download_models.py ...) or inside the container, as the runbook does "
             "(docker exec app-prod python /app/scripts/download_models.py --model NAME --force)")

if __name__ == "__main__":
    sys.exit(main(default_store=str(ROOT / "models"), repo=ROOT))
