"""What the server decides at load from timing the model: the first seconds-per-text estimate, and
whether the model is cheap enough to be called on the event loop (``MicroBatcher.inline``)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from serving_helpers import live_server

import sentitune
from sentitune.config import ServeConfig
from sentitune.serving.app import Service, create_app
from sentitune.serving.service import INLINE_BELOW_S


def test_the_fast_preset_is_served_inline_and_answers_as_the_model_does():
    app = create_app(ServeConfig(model_path="fast", auth_enabled=False))
    batcher = app.state.service.batcher
    texts = [f"review {i}: {'a delight from start to finish' if i % 2 else 'a waste of money'}" for i in range(32)]

    async def burst(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(*(client.post("/api/v1/analyze", json={"text": t}) for t in texts))

    with live_server(app=app) as url:
        assert batcher.inline is True
        assert 0 < batcher.cost.per_text * app.state.service.config.batch_size < INLINE_BELOW_S
        responses = asyncio.run(burst(url))
        counts = batcher.waiting, batcher.in_model
    assert counts == (0, 0)
    expected = sentitune.load("fast").predict_records(texts)
    assert [r.status_code for r in responses] == [200] * len(texts)
    assert [r.json()["predicted_sentiment"] for r in responses] == [e["label"] for e in expected]
    assert [r.json()["confidence"] for r in responses] == pytest.approx([e["confidence"] for e in expected], abs=1e-5)


def test_the_default_transformer_keeps_its_model_thread():
    service = Service(ServeConfig(auth_enabled=False))
    service.load()
    assert service.load_error is None
    assert service.batcher.inline is False
    # the estimate the queue's time limit starts from: a full batch's measured seconds, per text
    assert service.batcher.cost.per_text * service.config.batch_size >= INLINE_BELOW_S
