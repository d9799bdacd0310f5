"""Parse the human units config and playbooks use: durations ("30s", "10m") and sizes ("4g")."""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "format_size", "parse_duration", "parse_size"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Docker's own units: "4g" means 4 GiB, as in `docker update --memory 4g`.
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like "30s", "10m", "1h30m", "500ms".

    Raises ValueError with a message fit for a user; bools are refused (YAML `yes`).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s' or '10m', got {value!r}")
    if isinstance(value, int | float):
        return _non_negative(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like '30s' or '10m', got {value!r}")
    text = value.strip()
    if _is_number(text):
        return _non_negative(float(text), value)
    pos, total = 0, 0.0
    for part in _DURATION_PART.finditer(text):
        if part.start() != pos:
            break
        total += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
        pos = part.end()
    if pos == 0 or pos != len(text):
        raise ValueError(f"expected a duration like '30s' or '10m', got {value!r}")
    return total


def parse_size(value: object) -> int:
    """Bytes from an int or a Docker-style size: "512m", "4g", "1.5GiB" (binary multiples)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like '512m' or '4g', got {value!r}")
    if isinstance(value, int):
        return int(_non_negative(value, value))
    if isinstance(value, float) and value.is_integer():
        return int(_non_negative(value, value))
    match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a size like '512m' or '4g', got {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def format_duration(seconds: float) -> str:
    """Short human form of a duration, the inverse of parse_duration for round values."""
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def format_size(size: int) -> str:
    """Short human form of a byte count ("4g"), used in error messages."""
    for unit, factor in (("t", 1024**4), ("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}b" if size < 1024 else f"{size / 1024**2:.1f}m"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _non_negative(number: float, original: object) -> float:
    if math.isnan(number) or math.isinf(number) or number < 0:
        raise ValueError(f"expected a non-negative finite value, got {original!r}")
    return number
