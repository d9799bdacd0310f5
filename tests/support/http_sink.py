"""A real HTTP server on 127.0.0.1 (free port, own thread) that records what it receives.

Stands in for a webhook endpoint (Slack, Teams, a generic receiver) in tests that want a
real socket rather than `responses`: connection handling, timeouts, urllib3 logging.

    with HttpSink(path="/hook") as sink:
        sink.set_responses([503, 503, 202])      # then the default (200 "ok")
        ...                                      # POST to sink.url
        assert sink.requests[-1].json() == {...}
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["HttpSink", "RecordedRequest", "ResponseSpec", "normalise_response"]

# A queued answer: a status, or (status, headers, body); a dict/list body is sent as JSON.
ResponseSpec = int | tuple[int, Mapping[str, str], bytes | str | dict[str, Any] | list[Any]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the sink saw it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class HttpSink:
    """Records every request; answers from a queue set by ``set_responses``, else default."""

    def __init__(self, path: str = "/hook", default_status: int = 200,
                 default_body: bytes | str = b"ok") -> None:
        self.path = path
        self.default_status = default_status
        self.default_body = default_body
        self.delay = 0.0  # seconds to stall before answering (a slow endpoint)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._queue: deque[ResponseSpec] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="http-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # what tests use ------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sink is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def set_responses(self, responses: Sequence[ResponseSpec]) -> None:
        """Answer the next requests with these, in order, then fall back to the default."""
        with self._lock:
            self._queue = deque(responses)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    # override point ------------------------------------------------------------

    def respond(self, request: RecordedRequest) -> tuple[int, Mapping[str, str], bytes]:
        """The answer to ``request``: the next queued one, else the default."""
        spec = self._next_queued()
        if spec is None:
            return normalise_response((self.default_status, {}, self.default_body))
        return normalise_response(spec)

    def _next_queued(self) -> ResponseSpec | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)


def normalise_response(spec: ResponseSpec) -> tuple[int, Mapping[str, str], bytes]:
    """(status, headers, body bytes) from a ResponseSpec."""
    if isinstance(spec, int):
        return spec, {}, b""
    status, headers, body = spec
    if isinstance(body, (dict, list)):
        return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()
    return status, headers, body.encode() if isinstance(body, str) else body


def _handler_for(sink: HttpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
            sink._record(request)
            if sink.delay:
                time.sleep(sink.delay)
            status, headers, payload = sink.respond(request)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler
