"""Prometheus metrics, JSON logs and request ids: one log line and one metric sample per request.

The logged ``client`` is an HMAC of the API key (never the key, nor a plain hash anyone holding a
guessed key could confirm); failed authentications also log the remote address.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sentitune.serving.errors import internal_error, request_id

log = logging.getLogger("sentitune.serving")


class Metrics:
    """Prometheus metrics in a registry of the app's own (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("sentitune_requests", "HTTP requests", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "sentitune_request_latency_seconds", "Request latency", ["endpoint"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_size = Histogram(
            "sentitune_model_batch_size", "Texts per model call", registry=r, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
        )
        # where a scored request's time goes: waiting for the model, then the model call itself
        self.queue_wait = Histogram(
            "sentitune_queue_wait_seconds", "Seconds a text waited for the model", registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.queued = Gauge("sentitune_queue_texts", "Texts waiting for the model (MAX_QUEUE sheds)", registry=r)
        self.expected_wait = Gauge(
            "sentitune_queue_expected_seconds", "Seconds the texts waiting or being scored take at the recent "
            "model seconds per text (MAX_QUEUE_WAIT_S sheds)", registry=r)
        self.model_time = Histogram(
            "sentitune_model_call_seconds", "Seconds per model call (one micro-batch)", registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.errors = Counter("sentitune_errors", "Error responses", ["status"], registry=r)
        self.rate_limited = Counter("sentitune_rate_limited", "Requests rejected by the rate limit", registry=r)
        self.overloaded = Counter("sentitune_overloaded", "Requests shed because the model queue was full", registry=r)
        self.texts = Counter("sentitune_texts_scored", "Texts scored", registry=r)
        self.model_loaded = Gauge("sentitune_model_loaded", "1 once the model is ready", registry=r)

    def observe_batch(self, waits: list[float], seconds: float) -> None:
        for wait in waits:
            self.queue_wait.observe(wait)
        self.model_time.observe(seconds)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with whatever ``extra={...}`` the call passed."""

    RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in self.RESERVED})
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def route_name(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "other")


def client_address(request: Request) -> str:
    """The peer's address (the client's own when a trusted proxy's X-Forwarded-For was applied)."""
    return request.client.host if request.client else "unknown"


class Observe:
    """ASGI middleware: request id, metrics, one JSON log line; a bug becomes a 500 with a request id.

    Plain ASGI: Starlette's ``BaseHTTPMiddleware`` (``app.middleware("http")``) spent 15% of the
    event loop's time at 64 connections on its task group and streams per request (py-spy, fast preset)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope, receive)
        rid = request_id(request)
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        start, status, started = time.perf_counter(), 500, False

        async def send_with_id(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, rid_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # a bug: full traceback in the log, a request id for the client
            log.exception("unhandled error", extra={"request_id": rid, "path": request.url.path})
            if not started:  # else too late for a 500: uvicorn closes the unfinished response's connection
                await internal_error(request)(scope, receive, send_with_id)
        record(request, status, time.perf_counter() - start)


def record(request: Request, status: int, elapsed: float) -> None:
    metrics: Metrics = request.app.state.service.metrics
    endpoint = route_name(request)
    metrics.requests.labels(endpoint, str(status)).inc()
    metrics.latency.labels(endpoint).observe(elapsed)
    if status >= 400:
        metrics.errors.labels(str(status)).inc()
    extra = {
        "request_id": request.state.request_id, "method": request.method, "path": request.url.path,
        "status": status, "duration_ms": round(elapsed * 1000, 2), "client": getattr(request.state, "client", None),
    }
    if status == 401 or getattr(request.state, "auth_failed", False):
        extra["remote_addr"] = client_address(request)  # who is guessing keys
    log.info("request", extra=extra)
