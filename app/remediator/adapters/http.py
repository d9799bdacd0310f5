"""HTTP checks of the target and Prometheus queries, through one small client object.

`HttpClient` is the transport seam for every outbound request but the notifiers' (their
HttpTransport): checks, Prometheus queries, reconciliation, `remediator replay`, the demo.
Tests swap it or use `responses`; timeouts are always set; `call` and `get_json` translate
requests' errors into :class:`~remediator.errors.Unreachable`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from remediator.core import defaults
from remediator.core.defaults import MAX_HTTP_BODY_BYTES
from remediator.core.targets import Target
from remediator.errors import ActionFailed, ActionTimeout, RuntimeError_, Unreachable

__all__ = ["HttpActions", "HttpClient", "json_contains"]


class HttpClient:
    def __init__(self, session: requests.Session | None = None,
                 timeout: float = defaults.HTTP_REQUEST_TIMEOUT_S) -> None:
        self.session = session or requests.Session()
        self.timeout = timeout

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, url, **kwargs)

    def call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """:meth:`request`, with no answer at all raised as Unreachable (naming the URL)."""
        try:
            return self.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise Unreachable(f"{method} {url}: {exc}") from None

    def get_json(self, url: str, *, any_status: bool = False, **kwargs: Any) -> Any:
        """GET ``url`` and return its JSON body; Unreachable when there is no answer, the
        body is not JSON, or (unless ``any_status``) the status is an error."""
        resp = self.call("GET", url, **kwargs)
        try:
            if not any_status:
                resp.raise_for_status()
            return resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise Unreachable(f"GET {url}: {exc}") from None


def json_contains(body: Any, expected: Any) -> bool:
    """True when `expected` is a subset of `body` (dicts by key, other values by equality)."""
    if isinstance(expected, Mapping):
        return isinstance(body, Mapping) and all(
            key in body and json_contains(body[key], value) for key, value in expected.items())
    return bool(body == expected)


class HttpActions:
    def __init__(self, prometheus_url: str, client: HttpClient | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 prometheus_client: HttpClient | None = None) -> None:
        self.prometheus_url = prometheus_url.rstrip("/")
        self.client = client or HttpClient()
        # Prometheus' own client (its basic auth): the app's checks never see those credentials.
        self.prometheus_client = prometheus_client or self.client
        self.sleep = sleep
        self.clock = clock

    def call(self, action: str, args: dict[str, Any], target: Target,
             timeout: float) -> dict[str, Any]:
        """Run one action within `timeout` seconds (ActionTimeout when it runs out)."""
        if action == "http.check":
            return self.check(args, target, timeout)
        if action == "prometheus.query":
            return self.query(args, timeout)
        raise ActionFailed(f"unknown http action {action!r}")

    def _observe(self, method: str, url: str, body: Any, timeout: float,
                 base_url: str) -> tuple[int | None, Any, str]:
        """One request (redirects followed only within ``base_url``), its body read up to
        MAX_HTTP_BODY_BYTES: (status, JSON or text, a one-line summary)."""
        note = ""
        for _ in range(defaults.HTTP_MAX_REDIRECTS + 1):
            try:
                resp = self.client.request(method, url, json=body, timeout=timeout,
                                           allow_redirects=False, stream=True)
            except requests.RequestException as exc:
                return None, None, f"{method} {url}: {type(exc).__name__}"
            location = resp.headers.get("Location") if resp.is_redirect else None
            if location is None:
                break
            resp.close()
            target = urljoin(url, location)
            if not within(target, base_url):
                note = (f" (redirect to {target} not followed: off the target's base_url "
                        f"{base_url})")
                return resp.status_code, None, f"{method} {url}: {resp.status_code}{note}"
            url = target
        raw, cut = read_capped(resp, MAX_HTTP_BODY_BYTES)
        parsed: Any
        try:
            parsed = json.loads(raw) if not cut else raw.decode("utf-8", "replace")[:2000]
        except ValueError:
            parsed = raw.decode("utf-8", "replace")[:2000]
        if cut:
            note = f" (body cut at the {MAX_HTTP_BODY_BYTES} bytes cap; not parsed)"
        return (resp.status_code, parsed,
                f"{method} {url}: {resp.status_code} {_short(parsed)}{note}")

    def check(self, args: dict[str, Any], target: Target, timeout: float) -> dict[str, Any]:
        """Retry until the status and JSON subset hold; `ok: false` keeps the last evidence.

        The step's `timeout` bounds the whole check: no request or retry starts after it,
        and passing it raises ActionTimeout (with the last answer in the message).
        """
        url = target.base_url.rstrip("/") + "/" + str(args["path"]).lstrip("/")
        method, expect_status = str(args.get("method") or "GET"), int(args.get("expect_status")
                                                                       or 200)
        attempts = int(args.get("retries") or 0) + 1
        interval = float(args.get("interval") or 1.0)
        deadline = self.clock() + timeout
        status, body, summary = None, None, "no answer yet"
        for attempt in range(1, attempts + 1):
            left = deadline - self.clock()
            if left <= 0:
                raise _late(f"http.check {method} {url}", timeout, attempt - 1, summary)
            status, body, summary = self._observe(
                method, url, args.get("body"), min(defaults.HTTP_REQUEST_TIMEOUT_S, left),
                target.base_url)
            if status == expect_status and json_contains(body, args.get("expect") or {}):
                return {"ok": True, "status_code": status, "body": body, "output": summary}
            if attempt < attempts and self.clock() + interval >= deadline:
                raise _late(f"http.check {method} {url}", timeout, attempt, summary)
            if attempt < attempts:
                self.sleep(interval)
        if self.clock() >= deadline:
            raise _late(f"http.check {method} {url}", timeout, attempts, summary)
        return {"ok": False, "status_code": status, "body": body,
                "output": f"expectation not met after {attempts} attempt(s): {summary}"}

    def query(self, args: dict[str, Any],
              timeout: float = defaults.HTTP_REQUEST_TIMEOUT_S) -> dict[str, Any]:
        """An instant query, its request bounded by `timeout` (ActionTimeout past it)."""
        url = f"{self.prometheus_url}/api/v1/query"
        try:
            resp = self.prometheus_client.request(
                "GET", url, params={"query": args["query"]},
                timeout=min(defaults.HTTP_REQUEST_TIMEOUT_S, timeout), allow_redirects=False,
                stream=True)
            raw, cut = read_capped(resp, MAX_HTTP_BODY_BYTES)
            if cut:
                raise ValueError(f"answer larger than the {MAX_HTTP_BODY_BYTES} bytes cap")
            data = json.loads(raw)
        except requests.Timeout:
            raise ActionTimeout(f"prometheus.query: {url} did not answer within "
                                f"{min(defaults.HTTP_REQUEST_TIMEOUT_S, timeout):g}s") from None
        except (requests.RequestException, ValueError) as exc:
            raise RuntimeError_(f"prometheus.query: {url} unreachable: {exc}") from None
        if data.get("status") != "success":
            raise ActionFailed(f"prometheus.query {args['query']!r}: {data.get('error')}")
        result = data["data"]["result"]
        value = _first_value(result)
        return {"result": result, "value": value,
                "output": f"{args['query']} = {value if value is not None else '(no data)'}"}


def within(url: str, base_url: str) -> bool:
    """Whether ``url`` is on ``base_url``'s scheme, host and port, under its path."""
    here, base = urlsplit(url), urlsplit(base_url)
    base_path = base.path.rstrip("/") + "/"
    return ((here.scheme, here.hostname, here.port) == (base.scheme, base.hostname, base.port)
            and (here.path + "/").startswith(base_path))


def read_capped(resp: Any, cap: int) -> tuple[bytes, bool]:
    """Up to ``cap`` bytes of a streamed response body (decoded), and whether more was
    there; the connection is closed either way, the rest never read."""
    chunks, size, cut = [], 0, False
    try:
        for chunk in resp.iter_content(64 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                cut = True
                break
    finally:
        resp.close()
    return b"".join(chunks)[:cap], cut


def _late(what: str, timeout: float, attempts: int, summary: str) -> ActionTimeout:
    return ActionTimeout(f"{what}: expectation not met within the step timeout of "
                         f"{timeout:g}s ({attempts} attempt(s)); last: {summary}")


def _first_value(result: Any) -> float | None:
    if isinstance(result, list) and result:
        sample = result[0].get("value")
        return float(sample[1]) if sample else None
    return None


def _short(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, sort_keys=True)
    return text[:300]
