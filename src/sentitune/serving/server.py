"""Running the app under uvicorn with connection limits.

uvicorn's own knobs cover concurrent connections (``limit_concurrency``: 503, given here the JSON error
body and Retry-After of the server's other 503s), keep-alive and the h11 header size; its httptools protocol (the fast one, used here) has no header size, header count
or header-read timeout, so ``GuardedHttpToolsProtocol`` adds them: 431 for oversized or too many
headers, and a connection that has not sent its headers within ``header_timeout_s`` is closed.
X-Forwarded-For is honoured only from ``trusted_proxies``. uvicorn's warning per request refused at
the cap is thinned to one line per few seconds that counts them (``RefusalLogThrottle``).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import Any

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sentitune.config import ServeConfig
from sentitune.serving.errors import error_body, new_request_id, overloaded_answer

REASONS = {431: b"Request Header Fields Too Large"}
UVICORN_LOG = "uvicorn.error"  # the logger uvicorn's protocols warn on


class RefusalLogThrottle(logging.Filter):
    """uvicorn warns "Exceeded concurrency limit." once per request refused at ``limit_concurrency``:
    under overload, thousands of lines that bury the rest of the log. One passes per ``interval_s``,
    rewritten to say how many were refused since the previous one (also as ``refused``, a field of
    the JSON log line); the count of a burst's tail is told by the next line, when the next refusal comes."""

    message = "Exceeded concurrency limit."
    interval_s = 5.0

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()  # servers in threads of one process share uvicorn's logger
        self._refused, self._last = 0, -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self.message:
            return True
        with self._lock:
            self._refused += 1
            now = time.monotonic()
            if now - self._last < self.interval_s:
                return False
            n, self._refused, self._last = self._refused, 0, now
        record.msg = (f"Exceeded concurrency limit: {n} {'request' if n == 1 else 'requests'} refused with 503 "
                      f"since the previous such line (at most one per {self.interval_s:g} s)")
        record.refused = n
        return True


def throttle_refusal_log() -> None:
    """A fresh ``RefusalLogThrottle`` on uvicorn's logger (replacing an earlier one): a new server counts from 0."""
    logger = logging.getLogger(UVICORN_LOG)
    for old in [f for f in logger.filters if isinstance(f, RefusalLogThrottle)]:
        logger.removeFilter(old)
    logger.addFilter(RefusalLogThrottle())


async def too_many_connections(scope, receive, send) -> None:
    """uvicorn's answer beyond ``limit_concurrency``, as the app's own overload 503: a client that
    honours Retry-After comes back later instead of at once; the connection is closed."""
    message = "server is busy: too many concurrent connections; retry shortly"
    headers, body = overloaded_answer(new_request_id(), message, close=True)
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits and a header-read timeout."""

    # per server: a subclass made by ``uvicorn_options``, or in a worker ``configure_worker_protocol``
    max_header_bytes = 16384
    max_headers = 100
    header_timeout_s = 10.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_headers, self._header_bytes, self._header_count, self._rejected = True, 0, 0, False
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._rejected:  # answered and closing: the rest of the request is not parsed
            return
        super().data_received(data)
        # still inside the headers after this chunk (counted after parsing: a request that begins in
        # it resets the count): the header block alone is over the limit
        if self._in_headers and not self._rejected:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes and not self.transport.is_closing():
                self._reject(431, f"request headers are over the limit of {self.max_header_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers, self._header_bytes, self._header_count = True, 0, 0
        if self._header_timer is None:  # the next request on a kept-alive connection
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count <= self.max_headers:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        if self._header_count > self.max_headers:
            return self._reject(431, f"request has over {self.max_headers} headers")
        if len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers) > self.max_header_bytes:
            return self._reject(431, f"request headers are over the limit of {self.max_header_bytes} bytes")
        super().on_headers_complete()

    def _start_asgi_task(self, cycle, app) -> None:  # type: ignore[override]
        # uvicorn picks its plain-text 503 app once connections or requests reach limit_concurrency
        super()._start_asgi_task(cycle, too_many_connections if app is service_unavailable else app)

    def on_body(self, body: bytes) -> None:
        if not self._rejected:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._rejected:
            super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._rejected:  # the parser may still complain about the request refused with 431
            super().send_400_response(msg)

    def _cancel_header_timer(self) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()
        self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _reject(self, status: int, message: str) -> None:
        """Answer before the app sees the request (the JSON error body of every other error), then close."""
        body = json.dumps(error_body(new_request_id(), status, "headers_too_large", message)).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n"
        ]
        self._rejected = True
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def header_limits(config: ServeConfig) -> dict[str, Any]:
    return {"max_header_bytes": config.max_header_bytes, "max_headers": config.max_headers,
            "header_timeout_s": config.header_timeout_s}


def configure_worker_protocol(config: ServeConfig) -> None:
    """In a worker process (one server per process) the protocol class itself carries the limits:
    uvicorn imports it there by name, a class made per server could not be sent to the worker."""
    for name, value in header_limits(config).items():
        setattr(GuardedHttpToolsProtocol, name, value)
    throttle_refusal_log()


def uvicorn_options(config: ServeConfig, workers: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` (everything but the app); uvicorn's
    refusal warnings in this process are thinned from here on."""
    throttle_refusal_log()
    if workers:
        http: Any = f"{__name__}:GuardedHttpToolsProtocol"
    else:  # several servers may share this process (tests, embedding): a class per server
        http = type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), header_limits(config))
    return dict(
        host=config.host, port=config.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=30,  # SIGTERM: stop accepting, finish requests in flight
        http=http,
        h11_max_incomplete_event_size=config.max_header_bytes,  # in case h11 is chosen instead
        limit_concurrency=config.limit_concurrency,
        timeout_keep_alive=config.timeout_keep_alive_s,
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise: a local client could
        # then pose as any address and escape per-address limits
        proxy_headers=bool(config.trusted_proxies),
        forwarded_allow_ips=list(config.trusted_proxies) or None,
    )
