"""Hugging Face's classification formats, so their clients work against this server unchanged.

    POST /predict  text-embeddings-inference (TEI): a single text answers ``[{"label", "score"}, ...]``,
                   a list of texts (or TEI's ``[[text], ...]``) one such list per text
    POST /         the Hugging Face Inference API, which ``huggingface_hub.InferenceClient(base_url=...)
                   .text_classification`` posts to: always one list per text, ``[[...]]`` for one text

Both labels, highest score first (as TEI sorts). ``score`` is the calibrated probability, or with
``raw_scores: true`` / ``parameters.function_to_apply: "none"`` the logit divided by the model's
temperature (softmax of those gives the calibrated probability back). Same key (``X-API-Key`` or
``Authorization: Bearer``) and rate limit as /api/v1; each text counts one unit.
No ``from __future__ import annotations``: FastAPI must see the body class itself.
"""

import math

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from sentitune.serving.deps import charge_texts, get_service, identify
from sentitune.serving.errors import ERROR_RESPONSES
from sentitune.serving.schemas import Prediction, RequestModels
from sentitune.serving.service import Service

Predictions = list[Prediction]


def compat_router(models: RequestModels) -> APIRouter:
    router = APIRouter(dependencies=[Depends(identify)], responses=ERROR_RESPONSES, tags=["Hugging Face formats"])

    @router.post("/predict", response_model=Predictions | list[Predictions])
    async def predict(
        body: models.predict, request: Request, service: Service = Depends(get_service)
    ) -> Predictions | list[Predictions]:
        """text-embeddings-inference's classification route."""
        rows = await classify(body, request, service)
        return rows[0] if isinstance(body.inputs, str) else rows

    @router.post("/", response_model=list[Predictions])
    async def inference_api(
        body: models.predict, request: Request, service: Service = Depends(get_service)
    ) -> list[Predictions]:
        """The Hugging Face Inference API's text classification (what ``InferenceClient`` posts)."""
        return await classify(body, request, service)

    return router


def input_texts(inputs: str | list) -> list[str]:
    if isinstance(inputs, str):
        return [inputs]
    return [x[0] if isinstance(x, list) else x for x in inputs]


async def classify(body: BaseModel, request: Request, service: Service) -> list[Predictions]:
    texts = [service.check_text(t, "inputs" if isinstance(body.inputs, str) else f"inputs[{i}]")
             for i, t in enumerate(input_texts(body.inputs))]
    await charge_texts(request, len(texts))
    params = body.parameters
    function = (params and params.function_to_apply) or ("none" if body.raw_scores else "softmax")
    if not body.truncate:
        await service.check_token_counts(texts)
    if function == "softmax":
        scores = [r["probabilities"] for r in await service.score(texts)]
    else:
        scores = await service.raw_scores(texts)
        if function == "sigmoid":
            scores = [{label: 0.5 * (1.0 + math.tanh(v / 2)) for label, v in row.items()} for row in scores]  # overflow-free
    top_k = params.top_k if params and params.top_k else None
    return [ranked(row)[:top_k] for row in scores]


def ranked(scores: dict[str, float]) -> Predictions:
    return [Prediction(label=label, score=s) for label, s in sorted(scores.items(), key=lambda kv: -kv[1])]
