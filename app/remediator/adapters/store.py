"""Moved: the store is the package :mod:`remediator.store` (issue 17). These names stay
importable from here for code written against the old module."""

from __future__ import annotations

from remediator.store.records import MAX_ROW_ID, iso
from remediator.store.sqlite import MAX_OUTPUT_CHARS, SqliteStore, ago, capped

Store = SqliteStore

__all__ = ["MAX_OUTPUT_CHARS", "MAX_ROW_ID", "Store", "ago", "capped", "iso"]
