"""Mask secret-looking values before text leaves the process.

Container output (``docker logs``, ``env``) and alert labels end up in Slack, PagerDuty,
e-mail and the execution report; any of them may carry a token. ``redact`` is applied to
everything captured from the outside world before it is rendered into a notification, and
``mask`` is how configured secrets (webhook URLs, routing keys, passwords) are shown in the
API and the report.

The patterns err on the side of masking: a masked non-secret costs a little diagnosis, a
leaked secret costs a rotation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["MASK", "mask", "redact"]

MASK = "***"
"""What a redacted value is replaced with."""

_MIN_KNOWN_SECRET = 4  # shorter "secrets" would mask ordinary words all over the text

# A variable or field name that names a secret: SMTP_PASSWORD, X-Auth-Token, aws_secret_...
_SECRET_NAME = (
    r"[A-Za-z0-9_.\-]*?"
    r"(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key(?:[_\-]?id)?"
    r"|private[_\-]?key|routing[_\-]?key|integration[_\-]?key|credentials?|auth"
    r"|webhook(?:[_\-]?url)?|dsn|cookie|(?<![A-Za-z])key)"
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys: the whole block, however long.
    (
        re.compile(
            r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL
        ),
        r"-----BEGIN \1PRIVATE KEY----- *** -----END \1PRIVATE KEY-----",
    ),
    # Slack incoming webhooks / workflow triggers: the path *is* the credential.
    (
        re.compile(r"(https?://hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s'\"<>|]+"),
        r"\1***",
    ),
    # Teams / Office 365 connector webhooks: the path carries the credential too.
    (re.compile(r"(https?://[\w.\-]+\.webhook\.office\.com/)[^\s'\"<>|]+"), r"\1***"),
    # user:password@host in any URL.
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@'\"]+):[^/\s@'\"]+@"), r"\1:***@"),
    # Signed-URL and token query parameters (Power Automate / Logic Apps use sig=...).
    (
        re.compile(
            r"(?i)([?&](?:sig|signature|token|access_token|api[_\-]?key|key|secret|password"
            r"|code|auth)=)[^&\s'\"<>]+"
        ),
        r"\1***",
    ),
    # HTTP auth headers, whatever the scheme.
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?)"
            r"(?:(bearer|basic|token|digest)[ \t]+)?[^\s\"',]+"
        ),
        r"\1\2 ***",
    ),
    (re.compile(r"(?i)\b(bearer)[ \t]+[A-Za-z0-9\-._~+/]+=*"), r"\1 ***"),
    # Well-known token shapes that may appear without a name in front of them.
    (re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), MASK),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), MASK),
)

# NAME=value, NAME: value, "name": "value" where NAME looks like a secret's name. The
# separator allows spaces and tabs only, so an empty value never swallows the next line.
_ASSIGNMENT = re.compile(
    r"(?i)(?P<q>[\"']?)\b(?P<name>" + _SECRET_NAME + r")(?P=q)(?P<sep>[ \t]*[=:][ \t]*)"
    r"(?P<val>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;&]+)"
)


def _mask_assignment(match: re.Match[str]) -> str:
    value = match.group("val")
    quote = value[0] if value[:1] in {'"', "'"} else ""
    if value.strip("\"'") in {"", MASK}:
        return match.group(0)
    prefix = match.group(0)[: match.start("val") - match.start(0)]
    return f"{prefix}{quote}{MASK}{quote}"


def redact(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with secret-looking values replaced by ``***``.

    ``known_secrets`` are exact values to mask wherever they appear (the configured webhook
    URLs and keys), which catches secrets no pattern recognises.
    """
    for secret in sorted({s for s in known_secrets if len(s) >= _MIN_KNOWN_SECRET}, key=len,
                         reverse=True):
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _ASSIGNMENT.sub(_mask_assignment, text)


def mask(value: str | None) -> str:
    """Show a configured secret without revealing it: enough to tell two apart, no more.

    URLs keep scheme and host (``https://hooks.slack.com/***``); long opaque values keep
    their last four characters; short ones are masked whole; unset shows as ``""``.
    """
    if not value:
        return ""
    if "://" in value:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}/{MASK}"
    if len(value) < 16:
        return MASK
    return f"{MASK}{value[-4:]}"
