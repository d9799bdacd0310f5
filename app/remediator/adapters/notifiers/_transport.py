"""The one way notifiers speak HTTP: a small object tests can swap, requests underneath.

Webhook URLs are credentials (the path of a Slack hook *is* the secret), so nothing here
puts a URL into an exception or a log line, and while a request is in flight urllib3's own
debug lines are rewritten to hide it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

import requests

from remediator.core import defaults
from remediator.core.clock import utc_now
from remediator.core.redact import MASK, redact
from remediator.errors import NotifyPermanent, NotifyRetryable

__all__ = [
    "HttpResponse",
    "HttpTransport",
    "check_status",
    "parse_retry_after",
    "url_secrets",
]

_USER_AGENT: Final = "remediator-notifier/0.1"
_BODY_SNIPPET: Final = 300  # enough of an error body to say why, not a whole HTML page
_TOKEN_LEN: Final = 12  # a path segment or query value this long may be the token itself


@dataclass(frozen=True)
class HttpResponse:
    """What a notifier needs from an answer; independent of the HTTP library."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str = ""

    def json(self) -> object:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


class HttpTransport:
    """POSTs JSON with timeouts always set, and turns failures into Notify* errors."""

    def __init__(
        self,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = defaults.NOTIFY_TIMEOUTS_S,
    ) -> None:
        self.session = session or requests.Session()
        self.timeout = timeout

    def post_json(
        self, channel: str, url: str, body: object, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """POST ``body`` as JSON; ``channel`` names the sender in errors instead of the URL."""
        all_headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        all_headers.update(headers or {})
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        with _hiding(url):
            try:
                answer = self.session.post(
                    url, data=data, headers=all_headers, timeout=self.timeout,
                    allow_redirects=False,  # a redirect would replay the body elsewhere
                )
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema):
                raise NotifyPermanent(f"{channel}: the configured URL is not valid") from None
            except requests.RequestException as exc:
                # `from None`: the original message contains the URL.
                raise NotifyRetryable(f"{channel}: network error ({type(exc).__name__})") \
                    from None
        return HttpResponse(answer.status_code, dict(answer.headers), answer.text)


def check_status(channel: str, response: HttpResponse, secrets: Iterable[str] = ()) -> None:
    """Raise unless 2xx: 429, 408 and 5xx are worth retrying, anything else is not.

    ``secrets`` (the URL, the key) are masked should the endpoint echo them in its answer.
    """
    status = response.status
    if 200 <= status < 300:
        return
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    why = _snippet(response.text, secrets)
    if status in (408, 429) or status >= 500:
        raise NotifyRetryable(f"{channel}: HTTP {status}{why}", retry_after=retry_after)
    raise NotifyPermanent(f"{channel}: HTTP {status}{why}")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or utc_now())).total_seconds())


def _snippet(text: str, secrets: Iterable[str]) -> str:
    text = redact(" ".join(text.split()), known_secrets=secrets)
    if not text:
        return ""
    if len(text) > _BODY_SNIPPET:
        text = text[:_BODY_SNIPPET] + "…"
    return f": {text}"


# ------------------------------------------------------------ urllib3 log hiding

_in_flight = threading.local()


@contextmanager
def _hiding(url: str) -> Iterator[None]:
    previous = getattr(_in_flight, "secrets", ())
    _in_flight.secrets = (*previous, *url_secrets(url))
    try:
        yield
    finally:
        _in_flight.secrets = previous


def url_secrets(url: str) -> tuple[str, ...]:
    """The parts of a webhook URL to mask wherever they appear: the whole URL, its request
    target (path + query, as urllib3 logs it), the path and the query alone (as an endpoint
    echoes them: "Cannot POST /hooks/<token>"), and every long path segment or query value
    (the token itself). The host alone is not a secret."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    pieces = [url, target, parts.path, unquote(parts.path), parts.query]
    pieces += [seg for seg in parts.path.split("/") if len(seg) >= _TOKEN_LEN]
    pieces += [v for _, v in parse_qsl(parts.query) if len(v) >= _TOKEN_LEN]
    return tuple(dict.fromkeys(p for p in pieces if len(p) > 1))


class _HideInFlightUrls(logging.Filter):
    """Rewrites urllib3 records made while a notifier request is in flight on this thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = getattr(_in_flight, "secrets", ())
        if secrets:
            text = record.getMessage()
            for secret in sorted(secrets, key=len, reverse=True):
                text = text.replace(secret, f"/{MASK}" if secret.startswith("/") else MASK)
            record.msg, record.args = redact(text), ()
        return True


_FILTER = _HideInFlightUrls()
for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry",
              "urllib3.response", "requests"):
    logging.getLogger(_name).addFilter(_FILTER)
