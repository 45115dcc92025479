"""The endpoints: one router per API (``/api/v1``, the legacy ``/analyze-sentiment``) and operations.

The request bodies carry this server's limits (see ``schemas.request_models``), so the API routers
are built per app. No ``from __future__ import annotations`` here: FastAPI must see the body
classes themselves, which are local to the router factories.
"""

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sentitune.serving.deps import charge_texts, get_service, identify, rate_limit
from sentitune.serving.errors import ERROR_RESPONSES
from sentitune.serving.schemas import (
    AnalyzeResult,
    BatchResponse,
    HealthResponse,
    LegacyResponse,
    RequestModels,
)
from sentitune.serving.service import Service


def v1_router(models: RequestModels) -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

    @router.post("/analyze", response_model=AnalyzeResult, dependencies=[Depends(rate_limit)])
    async def analyze(body: models.analyze, service: Service = Depends(get_service)) -> AnalyzeResult:
        """Classify one text."""
        start = time.perf_counter()
        [result] = await score(service, [service.check_text(body.text, "text")], body.include_reasoning, start)
        return result

    @router.post("/analyze/batch", response_model=BatchResponse, dependencies=[Depends(identify)])
    async def analyze_batch(
        body: models.batch, request: Request, service: Service = Depends(get_service)
    ) -> BatchResponse:
        """Classify several texts; results keep the order of ``texts``. Each text counts against the rate limit."""
        start = time.perf_counter()
        texts = [service.check_text(t, f"texts[{i}]") for i, t in enumerate(body.texts)]
        await charge_texts(request, len(texts))
        results = await score(service, texts, body.include_reasoning, start)
        return BatchResponse(results=results, total_processing_time=time.perf_counter() - start)

    return router


async def score(service: Service, texts: list[str], include_reasoning: bool, start: float) -> list[AnalyzeResult]:
    records = await service.score(texts)
    reasons = [None] * len(texts)
    if include_reasoning:
        reasons = await service.reasoning(texts, [r["label"] for r in records])
    elapsed = time.perf_counter() - start
    return [
        AnalyzeResult(
            text=t, predicted_sentiment=r["label"], confidence=r["confidence"], reasoning=why, processing_time=elapsed
        )
        for t, r, why in zip(texts, records, reasons)
    ]


def legacy_router(models: RequestModels) -> APIRouter:
    router = APIRouter(dependencies=[Depends(rate_limit)], responses=ERROR_RESPONSES)

    @router.post("/analyze-sentiment", response_model=LegacyResponse)
    async def analyze_sentiment(body: models.legacy, service: Service = Depends(get_service)) -> LegacyResponse:
        """The older single-model API, for clients written against it. ``context`` is accepted and ignored."""
        text = service.check_text(body.text, "text")
        [record] = await service.score([text])
        return LegacyResponse(text=text, sentiment=record["label"], confidence=record["confidence"])

    return router


ops_router = APIRouter()


@ops_router.get("/api/v1/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(service: Service = Depends(get_service)):
    """Readiness: 200 once the model answers, 503 while it loads or if it failed to load."""
    body = service.health()
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)


@ops_router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(service: Service = Depends(get_service)):
    """Prometheus metrics."""
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
