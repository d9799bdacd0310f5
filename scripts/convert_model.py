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

from mobile_multimodal.convert import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
