"""`remediator db copy`: every row of one store into a new, empty one, ids kept.

The usual move is the SQLite file of `make up` into the PostgreSQL database replicas share:
both stores are opened (so migrated to the same version), the destination must hold no
row, and the copy is one transaction on the destination: it lands whole or not at all.
Each table is copied in id order after the tables it references; PostgreSQL's id
sequences are then moved past the copied ids, so new rows do not collide with them.
"""

from __future__ import annotations

from remediator.errors import StoreError
from remediator.store.api import Store
from remediator.store.sql import TABLES, SqlStore

__all__ = ["copy_store"]


def copy_store(source: Store, destination: Store) -> dict[str, int]:
    """Copy every table of `source` into `destination`; returns the rows copied per table.
    Raises StoreError when the destination is not empty or the versions differ."""
    if not isinstance(source, SqlStore) or not isinstance(destination, SqlStore):
        raise StoreError("db copy works between the SQL stores (SQLite, PostgreSQL)")
    if source.schema_version() != destination.schema_version():
        raise StoreError(f"{source.path} is at schema version {source.schema_version()}, "
                         f"{destination.path} at {destination.schema_version()}: open both "
                         "with this Remediator first")
    full = [table for table in TABLES if destination.has_rows(table)]
    if full:
        raise StoreError(f"the destination {destination.path} is not empty (it has rows in "
                         f"{', '.join(full)}): copy only into a new, empty database")
    return destination.load({table: list(source.dump(table)) for table in TABLES})
