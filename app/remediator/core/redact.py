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

__all__ = ["MASK", "mask", "redact", "redact_data", "redact_env", "unmask_env"]

MASK = "***"
"""What a redacted value is replaced with."""

_MIN_KNOWN_SECRET = 4  # shorter "secrets" would mask ordinary words all over the text

# Linear time, on any input up to the webhook body limit and beyond (bench/bench_redact.py).
# Python's backtracking engine is quadratic when a pattern with an unbounded run can start at
# every position of a long run (``"a-" * 100_000`` against ``\b[\w.-]*?password``: each of
# the 100,000 starts rescans the rest of the run). So every pattern below either begins with
# a literal that cannot repeat inside the run it then scans, or is anchored at the *start* of
# its run by a look-behind of its own character class (each run is then scanned from one
# start only); the two shapes that cannot be written that way -- ``NAME=value`` assignments
# and JWTs -- are found by a small tokenizer over maximal runs. tests/unit/test_redact.py
# checks this on hostile inputs of every pattern; bench/bench_redact.py measures it.

_NAME_CHARS = r"A-Za-z0-9_.\-"

# A variable or field name that names a secret *ends* with one of these: SMTP_PASSWORD,
# X-Auth-Token, aws_secret_access_key, PAGERDUTY_ROUTING_KEY (but not MONKEY or AUTHOR).
_SECRET_NAME_END = re.compile(
    r"(?i)(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key"
    r"|access[_\-]?key(?:[_\-]?id)?|private[_\-]?key|routing[_\-]?key|integration[_\-]?key"
    r"|credentials?|auth|webhook(?:[_\-]?url)?|dsn|cookie|(?<![A-Za-z])key)\Z"
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack incoming webhooks / workflow triggers: the path *is* the credential.
    (
        re.compile(r"(https?://hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s'\"<>|]+"),
        r"\1***",
    ),
    # Teams / Office 365 connector webhooks: the path carries the credential too.
    (re.compile(r"(https?://[\w.\-]+\.webhook\.office\.com/)[^\s'\"<>|]+"), r"\1***"),
    # user:password@host in any URL (a scheme is at most 32 characters: bounded, so a long
    # run of scheme characters is not rescanned from each of its word boundaries).
    (
        re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]{0,31}://[^/\s:@'\"]+):[^/\s@'\"]+@"),
        r"\1:***@",
    ),
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
)

# PEM private keys: BEGIN and END markers are found on their own and paired in Python (a
# lazy ``BEGIN.*?END`` rescans the rest of the text for every BEGIN without an END).
_PEM_MARKER = re.compile(r"-----(BEGIN|END) ([A-Z ]*)PRIVATE KEY-----")
_PEM_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")

# JWTs: header.payload.signature, the header starting ``eyJ`` (base64url of ``{"``). Found
# as a maximal dotted run, then checked segment by segment.
_DOTTED_RUN = re.compile(
    r"(?<![A-Za-z0-9_\-])(?<![A-Za-z0-9_\-]\.)[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+){2,}"
)
_JWT_HEAD = re.compile(r"(?<![A-Za-z0-9_])eyJ[A-Za-z0-9_\-]{8}")
_JWT_MIN_SEGMENT = 8

# NAME=value, NAME: value, "name": "value": the name is a maximal run of name characters
# (optionally quoted) followed by the separator; the value is read after it. The separator
# allows spaces and tabs only, so an empty value never swallows the next line.
_NAME_TAIL = 32  # longer than any secret-name ending above, plus the char before it
_ASSIGNMENT_HEAD = re.compile(
    r"(?P<q>[\"']?)(?<![" + _NAME_CHARS + r"])(?P<name>[" + _NAME_CHARS + r"]+)(?P=q)"
    r"[ \t]*[=:][ \t]*"
)
_BARE_VALUE = re.compile(r"[^\s\"',;&]+")


def _redact_pem(text: str) -> str:
    markers = [(m.group(1), m.group(2), m.start(), m.end()) for m in _PEM_MARKER.finditer(text)]
    if not markers:
        return text
    ends: dict[str, list[tuple[int, int]]] = {}
    for kind, label, start, end in markers:
        if kind == "END":
            ends.setdefault(label, []).append((start, end))
    next_end = dict.fromkeys(ends, 0)
    out: list[str] = []
    done = 0  # text[:done] is already in ``out``
    for kind, label, start, end in markers:
        if kind != "BEGIN" or start < done:
            continue
        closes = ends.get(label, [])
        i = next_end.get(label, 0)
        while i < len(closes) and closes[i][0] < end:
            i += 1
        next_end[label] = i
        out.append(text[done:start])
        if i < len(closes):
            out.append(f"-----BEGIN {label}PRIVATE KEY----- {MASK} "
                       f"-----END {label}PRIVATE KEY-----")
            done = closes[i][1]
        else:  # cut off (a capped log): mask the base64 body that follows
            out.append(f"-----BEGIN {label}PRIVATE KEY----- {MASK}")
            body = _PEM_BASE64.match(text, end)
            done = body.end() if body else end
    out.append(text[done:])
    return "".join(out)


def _redact_jwt(match: re.Match[str]) -> str:
    if "eyJ" not in match.group(0):
        return match.group(0)
    segments = match.group(0).split(".")
    out: list[str] = []
    i = 0
    while i < len(segments):
        head = _JWT_HEAD.search(segments[i]) if i + 2 < len(segments) else None
        if head and all(len(s) >= _JWT_MIN_SEGMENT for s in segments[i + 1:i + 3]):
            out.append(segments[i][:head.start()] + MASK)
            i += 3
        else:
            out.append(segments[i])
            i += 1
    return ".".join(out)


def _redact_assignments(text: str) -> str:
    out: list[str] = []
    done = pos = 0
    line_end = -1  # the end of the line holding ``pos``, computed once per line
    unclosed = {'"': -1, "'": -1}  # no closing quote of that kind before this offset
    while (head := _ASSIGNMENT_HEAD.search(text, pos)) is not None:
        pos = head.end()
        if not _SECRET_NAME_END.search(head.group("name")[-_NAME_TAIL:]):
            continue
        quote = text[pos:pos + 1]
        if quote in unclosed:
            if line_end < pos:
                line_end = text.find("\n", pos)
                line_end = len(text) if line_end < 0 else line_end
            close = -1 if unclosed[quote] > pos else text.find(quote, pos + 1, line_end)
            if close < 0:  # an unclosed quote: mask the word after it
                unclosed[quote] = line_end
                bare = _BARE_VALUE.match(text, pos + 1)
                value_end = bare.end() if bare else pos + 1
            else:
                value_end = close + 1
            value = text[pos + 1:close] if close >= 0 else text[pos + 1:value_end]
            masked = f"{quote}{MASK}{quote if close >= 0 else ''}"
        else:
            bare = _BARE_VALUE.match(text, pos)
            if bare is None:
                continue
            value_end, value, masked = bare.end(), bare.group(0), MASK
        if value not in {"", MASK}:
            out.append(text[done:pos])
            out.append(masked)
            done = value_end
        pos = value_end
    out.append(text[done:])
    return "".join(out)


def redact(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with secret-looking values replaced by ``***``.

    ``known_secrets`` are exact values to mask wherever they appear (the configured webhook
    URLs and keys), which catches secrets no pattern recognises. Time is linear in
    ``len(text)``; nothing but the secrets is removed.
    """
    for secret in sorted({s for s in known_secrets if len(s) >= _MIN_KNOWN_SECRET}, key=len,
                         reverse=True):
        text = text.replace(secret, MASK)
    text = _redact_pem(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = _DOTTED_RUN.sub(_redact_jwt, text)
    return _redact_assignments(text)


def redact_env(env: Iterable[str]) -> list[str]:
    """``NAME=value`` entries (a container's Env) with secret values masked, names kept.

    A value is masked when its name names a secret (``DB_PASSWORD``, ``API_TOKEN``) or the
    value itself carries one (the password of ``DATABASE_URL=postgres://u:pw@db``): the
    same rule as ``redact``. Other values are kept, because a rollback to the last-known-
    good restores them (a bad ``MODEL_PATH`` is a configuration fault the runbook fixes);
    ``unmask_env`` puts a masked secret back from the running container.
    """
    return [redact(entry) for entry in env]


def unmask_env(recorded: Iterable[str], current: Iterable[str]) -> list[str]:
    """``recorded`` (a masked Env) with each masked entry taken from ``current`` (the
    running container's real Env) by name; a masked entry the container no longer has is
    dropped, never written as ``***``."""
    live = {entry.split("=", 1)[0]: entry for entry in current}
    out = []
    for entry in recorded:
        if MASK not in entry:
            out.append(entry)
        elif (name := entry.split("=", 1)[0]) in live:
            out.append(live[name])
    return out


def redact_data(value: object) -> object:
    """``value`` (JSON-shaped: a step's outputs, arguments) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


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
