"""The sentiment API: ``create_app`` assembles the pieces, ``run_server`` runs it under uvicorn.

    sentitune serve --model-path D [--config configs/deploy.yaml] [--host H] [--port P]

    schemas.py        request/response bodies (limits from the settings)
    routes.py         /api/v1, the legacy /analyze-sentiment, health and metrics
    compat.py         Hugging Face formats: TEI's /predict, the Inference API's POST /
    page.py           GET /: the web page (page.html)
    deps.py           get_service, require_key, rate_limit
    errors.py         the JSON error model and its handlers
    observability.py  metrics, JSON logs, request ids
    service.py        model loading, micro-batcher, health
    guards.py         rate limits, failed-auth throttling, body size
    server.py         uvicorn options, header limits and timeouts
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from sentitune import __version__
from sentitune.config import ServeConfig
from sentitune.errors import SentituneError
from sentitune.serving.compat import compat_router
from sentitune.serving.errors import install_error_handlers
from sentitune.serving.guards import BodySizeLimit, ShedWhenBusy
from sentitune.serving.observability import Observe, configure_logging
from sentitune.serving.page import page_router
from sentitune.serving.routes import legacy_router, ops_router, v1_router
from sentitune.serving.schemas import request_models
from sentitune.serving.server import configure_worker_protocol, uvicorn_options
from sentitune.serving.service import Service

__all__ = ["Service", "app_from_env", "create_app", "run_server"]
log = logging.getLogger("sentitune.serving")


@asynccontextmanager
async def lifespan(app: FastAPI):
    service: Service = app.state.service
    if not service.config.auth_enabled:
        log.warning("authentication is DISABLED: every request is accepted (local use only)")
    await service.batcher.start()
    loader = None
    if service.model is None:
        loader = asyncio.get_running_loop().run_in_executor(service.batcher.primary, service.load)
    yield
    if loader is not None:
        await loader
    await service.batcher.stop()  # requests already queued are answered first
    gc.unfreeze()  # what Service.load froze can be collected again (tests run many servers in one process)


class SentituneApp(FastAPI):
    """FastAPI behind the early 503 (``ShedWhenBusy``, set by ``create_app``): under overload the
    refusals are most requests, so each skips even what FastAPI and Starlette do first per request."""

    shed: ShedWhenBusy

    async def __call__(self, scope, receive, send) -> None:
        await self.shed(scope, receive, send)


def create_app(config: ServeConfig | None = None, model: Any = None) -> FastAPI:
    """Build the app. ``model`` (a loaded predictor) skips the background load, for embedding."""
    config = config or ServeConfig()
    if config.auth_enabled and not config.api_keys:
        raise SentituneError("auth is enabled but no API key is configured: set API_KEY, api_keys in the config, or --no-auth")
    app = SentituneApp(
        title="sentitune",
        description="POSITIVE/NEGATIVE sentiment with calibrated confidence.",
        version=__version__,
        lifespan=lifespan,
        # FastAPI's OpenTelemetry hooks asked for a tracer provider on every request (3% of the event
        # loop at 64 connections); the server has its own metrics and logs (observability.py)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    service = app.state.service = Service(config, model)
    install_error_handlers(app)
    # inside `Observe` (added later = further out), so the 413 it raises is counted and logged there
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(Observe)
    # in front of the whole app: a full queue refuses before anything else runs
    app.shed = ShedWhenBusy(super(SentituneApp, app).__call__, busy=service.batcher.full,
                            on_shed=service.metrics.overloaded.inc, hold_s=config.shed_hold_s)
    models = request_models(config.max_text_chars, config.max_batch_texts)
    app.include_router(v1_router(models))
    app.include_router(legacy_router(models))
    app.include_router(compat_router(models))
    app.include_router(ops_router)
    app.include_router(page_router)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``workers > 1``: each worker process rebuilds the app from the handed-over config."""
    config = ServeConfig.from_worker_env()
    configure_logging(config.log_level)
    configure_worker_protocol(config)
    return create_app(config)


def run_server(config: ServeConfig) -> None:
    import uvicorn

    configure_logging(config.log_level)
    if config.workers > 1:
        if config.key_id_secret is None:  # one secret for all workers, so a key has one client id
            config = config.model_copy(update={"key_id_secret": secrets.token_hex(32)})
        create_app(config)  # validate (keys, settings) once, before forking workers
        config.export_to_workers()  # uvicorn's worker processes inherit the environment
        uvicorn.run(
            "sentitune.serving.app:app_from_env", factory=True, workers=config.workers,
            **uvicorn_options(config, workers=True),
        )
    else:
        uvicorn.run(create_app(config), **uvicorn_options(config))
