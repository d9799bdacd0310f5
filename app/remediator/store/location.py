"""Where a store is: a SQLite file (a path, or ``sqlite:///path``) or a PostgreSQL URL
(``postgresql://user@host:port/dbname``). No driver is imported here: the CLI checks a
location before anything connects."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["SQLITE_SCHEME", "display", "is_postgres", "redact_url", "sqlite_path",
           "url_password"]

SQLITE_SCHEME = "sqlite:///"
"""``sqlite:///relative/path`` or ``sqlite:////absolute/path``."""

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(_POSTGRES_SCHEMES)


def sqlite_path(location: str | Path) -> str:
    """The file of a SQLite location (a path, or ``sqlite:///path``)."""
    text = str(location)
    return text[len(SQLITE_SCHEME):] if text.startswith(SQLITE_SCHEME) else text


def url_password(location: str | Path) -> str | None:
    """The password a postgresql:// URL carries (after the user, or ``?password=``)."""
    if not is_postgres(location):
        return None
    parts = urlsplit(str(location))
    return parts.password or dict(parse_qsl(parts.query)).get("password")


def redact_url(url: str) -> str:
    """The URL without its password: what logs, errors and a store's ``path`` show."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def display(location: str | Path) -> str:
    """How to name a store to a person: a URL without its password, or the file."""
    return redact_url(str(location)) if is_postgres(location) else sqlite_path(location)
