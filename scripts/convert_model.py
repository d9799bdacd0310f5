#!/usr/bin/env python3
"""Migrate a model checkpoint written in an older format version to the current one.

Runbook scenario 5: ``python scripts/convert_model.py --input IN --output OUT
--target-version current``. A thin wrapper: the logic is ``mobile_multimodal.convert``.
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
    from mobile_multimodal.convert import main
except ModuleNotFoundError as missing:  # e.g. torch, outside the virtualenv and the image
    if (missing.name or "").startswith("mobile_multimodal"):
        raise
    sys.exit(f"convert_model.py: this Python ({sys.executable}) cannot import {missing.name}; "
             "run it with the project's virtualenv (make venv; .venv/bin/python "
             "scripts/convert_model.py ...) or inside the container, as the runbook does "
             "(docker exec app-prod python /app/scripts/convert_model.py --input ... --output ...)")

if __name__ == "__main__":
    sys.exit(main())
