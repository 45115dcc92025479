"""The sentiment API: FastAPI app, auth and rate-limit dependencies, metrics, JSON logs.

    sentitune serve --model-path D [--config configs/deploy.yaml] [--host H] [--port P]

Every error leaves as JSON, ``{"error": {"code", "type", "message", "request_id"}}``, with the
status the client can act on (400 bad input, 401 key, 413 body size, 429 rate, 503 not ready, 500
bug); tracebacks go to the server log only. The model loads in the background after start, so the
health endpoint can answer 503 (loading) to a readiness probe instead of the port being closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import resource
import sys
import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from sentitune import __version__
from sentitune.config import ServeConfig
from sentitune.errors import SentituneError
from sentitune.serving.batching import MicroBatcher
from sentitune.serving.schemas import (
    AnalyzeRequest,
    AnalyzeResult,
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    HealthResponse,
    LegacyRequest,
    LegacyResponse,
    ModelInfo,
)

log = logging.getLogger("sentitune.serving")
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 413, 429, 500, 503)
}


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers or {}


def error_response(request_id: str, status: int, kind: str, message: str, headers: dict | None = None) -> JSONResponse:
    body = {"error": {"code": status, "type": kind, "message": message, "request_id": request_id}}
    return JSONResponse(body, status_code=status, headers={**(headers or {}), "X-Request-ID": request_id})


# ---------------------------------------------------------------------------------- rate limit
class RateLimiter:
    """Token bucket per client: ``per_hour`` requests of burst, refilled evenly over the hour."""

    def __init__(self, per_hour: int):
        self.capacity = float(per_hour)
        self.rate = per_hour / 3600.0
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last refill)
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float | None:
        """Take one token; return None if allowed, else the seconds until one is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return None
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate if self.rate > 0 else 3600.0


# ------------------------------------------------------------------------------------- metrics
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
        self.errors = Counter("sentitune_errors", "Error responses", ["status"], registry=r)
        self.rate_limited = Counter("sentitune_rate_limited", "Requests rejected by the rate limit", registry=r)
        self.texts = Counter("sentitune_texts_scored", "Texts scored", registry=r)
        self.model_loaded = Gauge("sentitune_model_loaded", "1 once the model is ready", registry=r)


# ------------------------------------------------------------------------------------- logging
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


# --------------------------------------------------------------------------------- size limit
class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, declared (refused before it is read) or
    streamed without Content-Length (cut off at the limit).

    Raising FastAPI's HTTPException from ``receive`` reaches the app's JSON error handler; Starlette's
    own body limit would answer in plain text.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        declared_too_large = declared.isdigit() and int(declared) > self.max_bytes
        received = 0

        async def counting_receive():
            nonlocal received
            if declared_too_large:  # refused before anything is read
                raise HTTPException(413, too_large_message(self.max_bytes))
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, too_large_message(self.max_bytes))
            return message

        await self.app(scope, counting_receive, send)


def too_large_message(max_bytes: int) -> str:
    return f"request body is over the limit of {max_bytes} bytes"


# ------------------------------------------------------------------------------------- service
def memory_usage() -> dict[str, float]:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    try:  # current RSS (Linux)
        pages = int(open("/proc/self/statm").read().split()[1])
        out["rss_mb"] = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        pass
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu_allocated_mb"] = torch.cuda.memory_allocated() / 2**20
    except ImportError:
        pass
    return out


def gpu_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


class Service:
    """What the endpoints share: the model (loaded in the background), batcher, limits, metrics."""

    def __init__(self, config: ServeConfig, model: Any = None):
        self.config = config
        self.model = model
        self.load_error: str | None = None
        self.started = time.monotonic()
        self.metrics = Metrics()
        self.limiter = RateLimiter(config.rate_limit_per_hour)
        self.batcher = MicroBatcher(
            self._predict, config.batch_size, config.max_wait_ms, config.micro_batching,
            on_batch=self.metrics.batch_size.observe,
        )
        self.keys = [k.encode() for k in config.api_keys]
        if model is not None:
            self.metrics.model_loaded.set(1)

    def load(self) -> None:
        import sentitune

        try:
            model = sentitune.load(self.config.model_path)
            model.to(self.config.device).enable_cache(self.config.cache_size)
            # MAX_LENGTH caps the tokens per text of the methods that truncate by the artifact's setting
            model.meta.max_length = min(model.meta.max_length, self.config.max_length)
            model.predict(["warm-up: the first call pays for lazy initialisation"])
        except Exception as exc:  # reported by /health as 503 "error", the process stays up
            self.load_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error("model failed to load", extra={"model_path": self.config.model_path, "error": self.load_error})
            return
        self.model = model
        self.metrics.model_loaded.set(1)
        log.info("model loaded", extra={"model_path": self.config.model_path or "default", "method": model.meta.method})

    def _predict(self, texts: list[str]) -> list[dict]:
        records = self.model.predict_records(texts)
        self.metrics.texts.inc(len(texts))
        return records

    def model_info(self) -> ModelInfo:
        if self.model is None:
            return ModelInfo(name=self.config.model_path or "default")
        meta = self.model.meta
        return ModelInfo(
            name=meta.base_model or self.config.model_path or "default",
            method=meta.method,
            version=f"format {meta.format_version}, sentitune {meta.sentitune_version}, created {meta.created}",
        )

    # --- request checks -----------------------------------------------------------------------
    def check_text(self, text: str, where: str) -> str:
        if not text.strip():
            raise ApiError(400, "invalid_input", f"{where} is empty")
        if len(text) > self.config.max_text_chars:
            raise ApiError(
                400, "invalid_input", f"{where} has {len(text)} characters; the limit is {self.config.max_text_chars}"
            )
        return text

    def ready_model(self):
        if self.model is None:
            detail = f"model failed to load: {self.load_error}" if self.load_error else "model is loading"
            raise ApiError(503, "not_ready", detail, {"Retry-After": "5"})
        return self.model

    async def score(self, texts: list[str]) -> list[dict]:
        self.ready_model()
        try:
            return await self.batcher.submit(texts)
        except SentituneError as exc:
            raise ApiError(400, "invalid_input", str(exc)) from None

    async def reasoning(self, texts: list[str], labels: list[str]) -> list[str | None]:
        """Explanations from models that can give one (instruct LLMs); None for the rest."""
        explain = getattr(self.model, "explain", None)
        if explain is None:
            return [None] * len(texts)
        return await asyncio.get_running_loop().run_in_executor(None, explain, texts, labels)


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "other")


def create_app(config: ServeConfig | None = None, model: Any = None) -> FastAPI:
    """Build the app. ``model`` (a loaded predictor) skips the background load, for embedding."""
    config = config or ServeConfig()
    if config.auth_enabled and not config.api_keys:
        raise SentituneError("auth is enabled but no API key is configured: set API_KEY, api_keys in the config, or --no-auth")
    service = Service(config, model)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not config.auth_enabled:
            log.warning("authentication is DISABLED: every request is accepted (local use only)")
        await service.batcher.start()
        loader = None
        if service.model is None:
            loader = asyncio.get_running_loop().run_in_executor(None, service.load)
        yield
        if loader is not None:
            await loader
        await service.batcher.stop()  # requests already queued are answered first

    app = FastAPI(
        title="sentitune",
        description="POSITIVE/NEGATIVE sentiment with calibrated confidence.",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.service = service

    # --- dependencies: auth, then rate limit (per key) ------------------------------------------
    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="One of the server's API keys.")

    async def authenticate(request: Request, api_key: str | None = Security(api_key_header)) -> str:
        if not config.auth_enabled:
            return f"ip:{request.client.host if request.client else 'unknown'}"
        if not api_key:
            raise ApiError(401, "unauthorized", "missing X-API-Key header", {"WWW-Authenticate": "APIKey"})
        given = api_key.encode()
        # compare against every key, in constant time, so timing reveals neither key nor position
        matched = False
        for key in service.keys:
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise ApiError(401, "unauthorized", "invalid API key", {"WWW-Authenticate": "APIKey"})
        return "key:" + hashlib.sha256(given).hexdigest()[:16]  # the key itself is never stored or logged

    async def rate_limit(request: Request, client: str = Depends(authenticate)) -> str:
        request.state.client = client
        retry_after = service.limiter.acquire(client)
        if retry_after is not None:
            service.metrics.rate_limited.inc()
            seconds = max(1, math.ceil(retry_after))
            raise ApiError(
                429, "rate_limited", f"rate limit of {config.rate_limit_per_hour} requests/hour exceeded; retry in {seconds} s",
                {"Retry-After": str(seconds)},
            )
        return client

    guarded = [Depends(rate_limit)]

    # --- errors as JSON ----------------------------------------------------------------------------
    def request_id(request: Request) -> str:
        rid = getattr(request.state, "request_id", None) or request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        request.state.request_id = rid
        return rid

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError):
        return error_response(request_id(request), exc.status, exc.kind, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        return error_response(request_id(request), 400, "invalid_input", f"{where}: {err.get('msg', 'invalid')}")

    http_kinds = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        kind = http_kinds.get(exc.status_code, "http_error")
        return error_response(request_id(request), exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    # inside `observe` (added later = further out), so the 413 it raises is counted and logged there
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)

    @app.middleware("http")
    async def observe(request: Request, call_next):
        rid = request_id(request)
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # a bug: full traceback in the log, a request id for the client
            log.exception("unhandled error", extra={"request_id": rid, "path": request.url.path})
            response = error_response(rid, 500, "internal_error", "internal server error; quote the request id when reporting it")
        elapsed = time.perf_counter() - start
        endpoint = _route_name(request)
        response.headers["X-Request-ID"] = rid
        service.metrics.requests.labels(endpoint, str(response.status_code)).inc()
        service.metrics.latency.labels(endpoint).observe(elapsed)
        if response.status_code >= 400:
            service.metrics.errors.labels(str(response.status_code)).inc()
        log.info(
            "request",
            extra={
                "request_id": rid, "method": request.method, "path": request.url.path,
                "status": response.status_code, "duration_ms": round(elapsed * 1000, 2),
                "client": getattr(request.state, "client", None),
            },
        )
        return response


    # --- endpoints -------------------------------------------------------------------------------
    @app.post("/api/v1/analyze", response_model=AnalyzeResult, responses=ERROR_RESPONSES, dependencies=guarded)
    async def analyze(body: AnalyzeRequest) -> AnalyzeResult:
        """Classify one text."""
        start = time.perf_counter()
        text = service.check_text(body.text, "text")
        [record] = await service.score([text])
        reasoning = [None]
        if body.include_reasoning:
            reasoning = await service.reasoning([text], [record["label"]])
        return AnalyzeResult(
            text=text, predicted_sentiment=record["label"], confidence=record["confidence"],
            reasoning=reasoning[0], processing_time=time.perf_counter() - start,
        )

    @app.post("/api/v1/analyze/batch", response_model=BatchResponse, responses=ERROR_RESPONSES, dependencies=guarded)
    async def analyze_batch(body: BatchRequest) -> BatchResponse:
        """Classify several texts; results keep the order of ``texts``."""
        start = time.perf_counter()
        if not body.texts:
            raise ApiError(400, "invalid_input", "texts is empty")
        if len(body.texts) > config.max_batch_texts:
            raise ApiError(400, "invalid_input", f"texts has {len(body.texts)} items; the limit is {config.max_batch_texts}")
        texts = [service.check_text(t, f"texts[{i}]") for i, t in enumerate(body.texts)]
        records = await service.score(texts)
        reasons = [None] * len(texts)
        if body.include_reasoning:
            reasons = await service.reasoning(texts, [r["label"] for r in records])
        elapsed = time.perf_counter() - start
        results = [
            AnalyzeResult(
                text=t, predicted_sentiment=r["label"], confidence=r["confidence"], reasoning=why,
                processing_time=elapsed,
            )
            for t, r, why in zip(texts, records, reasons)
        ]
        return BatchResponse(results=results, total_processing_time=elapsed)

    @app.post("/analyze-sentiment", response_model=LegacyResponse, responses=ERROR_RESPONSES, dependencies=guarded)
    async def analyze_sentiment(body: LegacyRequest) -> LegacyResponse:
        """The older single-model API, for clients written against it. ``context`` is accepted and ignored."""
        text = service.check_text(body.text, "text")
        [record] = await service.score([text])
        return LegacyResponse(text=text, sentiment=record["label"], confidence=record["confidence"])

    @app.get("/api/v1/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health():
        """Readiness: 200 once the model answers, 503 while it loads or if it failed to load."""
        status = "ok" if service.model is not None else ("error" if service.load_error else "loading")
        body = HealthResponse(
            status=status, model_loaded=service.model is not None, gpu_available=gpu_available(),
            memory_usage=memory_usage(), uptime=time.monotonic() - service.started, model=service.model_info(),
            detail=service.load_error,
        )
        return JSONResponse(body.model_dump(), status_code=200 if status == "ok" else 503)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def metrics():
        """Prometheus metrics."""
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


# ------------------------------------------------------------------------------------- running
CONFIG_ENV = "SENTITUNE_SERVE_CONFIG"


def app_from_env() -> FastAPI:
    """Factory for ``workers > 1``: each worker process rebuilds the app from the serialized config."""
    config = ServeConfig.model_validate_json(os.environ[CONFIG_ENV])
    configure_logging(config.log_level)
    return create_app(config)


def run_server(config: ServeConfig) -> None:
    import uvicorn

    configure_logging(config.log_level)
    common = dict(
        host=config.host, port=config.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=30,  # SIGTERM: stop accepting, finish requests in flight
    )
    if config.workers > 1:
        os.environ[CONFIG_ENV] = config.model_dump_json()
        create_app(config)  # validate (keys, settings) once, before forking workers
        uvicorn.run("sentitune.serving.app:app_from_env", factory=True, workers=config.workers, **common)
    else:
        uvicorn.run(create_app(config), **common)
