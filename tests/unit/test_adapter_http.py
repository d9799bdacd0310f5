"""http.check and prometheus.query keep to the step's timeout (fake transport, fake clock)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import requests

from remediator.adapters.http import HttpActions, HttpClient
from remediator.core.defaults import HTTP_REQUEST_TIMEOUT_S as REQUEST_TIMEOUT
from remediator.core.targets import Target
from remediator.errors import ActionTimeout, Unreachable
from tests.support import HttpSink
from tests.support.fakes import FakeClock

TARGET = Target(name="app-prod", selector={}, container="app-prod",
                base_url="http://app-prod:8080")


class RefusingServer:
    """Every request takes `takes` seconds of the fake clock and is refused."""

    def __init__(self, clock: FakeClock, takes: float) -> None:
        self.clock, self.takes = clock, takes
        self.timeouts: list[float] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.timeouts.append(kwargs["timeout"])
        self.clock.t += min(self.takes, kwargs["timeout"])
        raise requests.ConnectionError("refused")


def actions(clock: FakeClock, server: RefusingServer) -> HttpActions:
    return HttpActions("http://prometheus:9090", client=server,  # type: ignore[arg-type]
                       sleep=clock.sleep, clock=clock.monotonic)


def test_http_check_stops_retrying_at_the_step_timeout_and_says_it_timed_out() -> None:
    clock = FakeClock()
    server = RefusingServer(clock, takes=0.1)
    with pytest.raises(ActionTimeout, match=r"within the step timeout of 0\.5s"):
        actions(clock, server).call("http.check", {"path": "/health", "retries": 30,
                                                   "interval": 0.01}, TARGET, 0.5)
    assert len(server.timeouts) < 31  # the remaining retries were not fired
    assert clock.t <= 0.5 + 1e-9


def test_http_check_caps_each_request_at_the_time_left() -> None:
    clock = FakeClock()
    server = RefusingServer(clock, takes=60.0)  # a server that never answers
    with pytest.raises(ActionTimeout):
        actions(clock, server).call("http.check", {"path": "/health", "retries": 3,
                                                   "interval": 1.0}, TARGET, 7.0)
    assert server.timeouts == [REQUEST_TIMEOUT, 1.0]  # 5 s, a 1 s pause, the last 1 s
    assert clock.t == pytest.approx(7.0)


def test_http_check_that_fails_in_time_keeps_its_evidence() -> None:
    clock = FakeClock()
    server = RefusingServer(clock, takes=0.1)
    out = actions(clock, server).call("http.check", {"path": "/health", "retries": 1,
                                                     "interval": 0.1}, TARGET, 10.0)
    assert out["ok"] is False and "after 2 attempt(s)" in out["output"]


def test_prometheus_query_is_bounded_by_the_step_timeout() -> None:
    clock = FakeClock()

    class Silent:
        def __init__(self) -> None:
            self.timeouts: list[float] = []

        def request(self, method: str, url: str, **kwargs: Any) -> Any:
            self.timeouts.append(kwargs["timeout"])
            raise requests.ReadTimeout("read timed out")

    client = Silent()
    http = HttpActions("http://prometheus:9090", client=client,  # type: ignore[arg-type]
                       clock=clock.monotonic)
    with pytest.raises(ActionTimeout, match=r"did not answer within 0\.25s"):
        http.call("prometheus.query", {"query": "up"}, TARGET, 0.25)
    assert client.timeouts == [0.25]


# -- real local servers: redirects and body size ---------------------------------------------
def _server(handler: Any) -> Any:
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _handler(answer: Any) -> Any:
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        hits: ClassVar[list[tuple[str, str, bytes]]] = []

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            Handler.hits.append((self.command, self.path, self.rfile.read(length)))
            status, headers, body = answer(self.path)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    return Handler


def test_http_check_does_not_follow_a_redirect_off_the_targets_base_url() -> None:
    elsewhere_handler = _handler(lambda path: (200, {}, b'{"status": "healthy"}'))
    elsewhere = _server(elsewhere_handler)
    other = f"http://127.0.0.1:{elsewhere.server_address[1]}"
    target_handler = _handler(lambda path: (
        (307, {"Location": f"{other}/steal"}, b"") if path == "/health"
        else (302, {"Location": "/health/ok"}, b"") if path == "/local"
        else (200, {}, b'{"status": "healthy"}')))
    app = _server(target_handler)
    target = Target(name="t", selector={}, container="t",
                    base_url=f"http://127.0.0.1:{app.server_address[1]}")
    http = HttpActions("http://127.0.0.1:1")
    try:
        out = http.call("http.check", {"path": "/health", "method": "POST",
                                       "body": {"secret": "x"},
                                       "expect": {"status": "healthy"}}, target, 10)
        assert out["ok"] is False and out["status_code"] == 307
        assert "not followed: off the target's base_url" in out["output"]
        assert elsewhere_handler.hits == []  # the other port never saw the check (or its body)
        # A redirect within the target's own base_url is followed.
        local = http.call("http.check", {"path": "/local", "expect": {"status": "healthy"}},
                          target, 10)
        assert local["ok"] is True
    finally:
        app.shutdown()
        elsewhere.shutdown()


def test_http_check_reads_a_body_up_to_the_cap_and_says_it_cut(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import remediator.adapters.http as http_module

    monkeypatch.setattr(http_module, "MAX_HTTP_BODY_BYTES", 1000)
    app = _server(_handler(lambda path: (200, {}, b'{"pad": "' + b"x" * 100_000 + b'"}')))
    target = Target(name="t", selector={}, container="t",
                    base_url=f"http://127.0.0.1:{app.server_address[1]}")
    try:
        out = HttpActions("http://127.0.0.1:1").call("http.check", {"path": "/big"}, target, 10)
    finally:
        app.shutdown()
    assert "body cut at the 1000 bytes cap" in out["output"]
    assert isinstance(out["body"], str) and len(out["body"]) <= 1000


# -- the seam's own translation (reconciliation, `remediator replay` and the demo use it) ---

def test_get_json_returns_the_answer_and_says_what_went_wrong_otherwise() -> None:
    client = HttpClient(timeout=2)
    with HttpSink(path="/api") as sink:
        sink.set_responses([(200, {}, {"alerts": []}), (503, {}, {"status": "degraded"}),
                            (503, {}, {"status": "degraded"}), (200, {}, b"<html>")])
        assert client.get_json(sink.url) == {"alerts": []}
        with pytest.raises(Unreachable, match=rf"GET {sink.url}: 503"):
            client.get_json(sink.url)
        assert client.get_json(sink.url, any_status=True) == {"status": "degraded"}
        with pytest.raises(Unreachable, match=rf"GET {sink.url}: "):
            client.get_json(sink.url)  # not JSON
    with pytest.raises(Unreachable, match=r"POST http://127.0.0.1:1/api: "):
        client.call("POST", "http://127.0.0.1:1/api")  # nothing listens there
