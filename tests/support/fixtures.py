"""Files the tests read, all inside the repository.

ALERTMANAGER holds webhook payloads captured from a real Alertmanager 0.25 (see its README).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ALERTMANAGER", "alertmanager_payload"]

ALERTMANAGER = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"


def alertmanager_payload(name: str) -> bytes:
    """The captured payload `name` (e.g. firing-model-load-failure.json), byte for byte.
    A missing file is an error, never a skip: the repository must carry it."""
    return (ALERTMANAGER / name).read_bytes()
