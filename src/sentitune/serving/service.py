"""What the endpoints share: the model (loaded in the background), micro-batcher, limits, health.

The model loads after the server starts, so the health endpoint can answer 503 (loading) to a
readiness probe instead of the port being closed.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import os
import resource
import secrets
import threading
import time
from collections.abc import Awaitable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from sentitune.config import ServeConfig, runtime_settings
from sentitune.errors import SentituneError
from sentitune.methods.base import text_problem
from sentitune.methods.hardware import usable_cores
from sentitune.methods.router import RouterModel
from sentitune.serving.batching import MicroBatcher, QueueFull
from sentitune.serving.errors import ApiError
from sentitune.serving.guards import Limiter, busy_answer
from sentitune.serving.observability import Metrics
from sentitune.serving.schemas import HealthResponse, ModelInfo

log = logging.getLogger("sentitune.serving")
# A model whose full micro-batch takes under this is called on the event loop (MicroBatcher.inline):
# the hand-off to the model thread then costs more than it frees (the fast preset: 32 texts in a few
# ms, in numpy under the GIL); a transformer's batch (~100 ms, torch without the GIL) keeps its thread.
INLINE_BELOW_S = 0.010


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


def model_threads(workers: int, processes: int = 1) -> tuple[int, int] | None:
    """torch's intra-op threads for a model call (alone on the primary model thread, beside another
    call); None: leave torch alone (SENTITUNE_THREADS is set, or no torch).

    A call alone gets every core, one text included: once only one thread ever calls torch on
    several cores (MicroBatcher.primary), one text on 2 Zen 4 cores answered at p50 5.3-6.8 ms at one
    connection instead of 7.8-8.8 ms on one core (a core had been kept for the event loop because
    two calling threads made torch's helper threads sleep between kernels: 11 ms). A 32-text batch alone
    on every core served 319 requests/s at 64 connections on 2 AMD EPYC (Zen 5) cores instead of
    195. Calls that run at once (``workers`` model threads) share the cores (benchmarks/load.py;
    switching the count per call costs nothing measurable), and so do server processes (``WORKERS``):
    two processes each giving a lone call both cores served 307 requests/s at 64 connections with
    p99 1.5 s, spinning helper threads of one process waiting for the other's."""
    if runtime_settings().threads:
        return None
    try:
        import torch
    except ImportError:
        return None
    alone = min(torch.get_num_threads(), max(1, usable_cores() // max(1, processes)))
    return alone, max(1, alone // workers)


class Service:
    def __init__(self, config: ServeConfig, model: Any = None):
        self.config = config
        self.model = model
        self.path: str | None = None  # the inference path chosen at load, for /health
        self.load_error: str | None = None
        self.threads: tuple[int, int] | None = None  # torch threads per kind of call: model_threads
        self._calls, self._wide = 0, False  # model calls running now; whether one of them has every core
        self._calls_changed = threading.Condition()
        self.started = time.monotonic()
        self.metrics = Metrics()
        self.limiter = Limiter(config)
        self.batcher = MicroBatcher(
            self._predict, config.batch_size, config.max_wait_ms, config.micro_batching,
            on_batch=self.metrics.batch_size.observe, max_queue=config.max_queue,
            on_timing=self.metrics.observe_batch, max_queue_wait_s=config.max_queue_wait_s,
            workers=config.model_workers or usable_cores(),
        )
        self.metrics.queued.set_function(lambda: self.batcher.waiting)
        self.metrics.expected_wait.set_function(lambda: self.batcher.expected_wait_s)
        self.keys = [k.encode() for k in config.api_keys]
        # the logged client id is an HMAC: without the secret a log reader cannot test a guessed key
        self.key_id_secret = (config.key_id_secret or secrets.token_hex(32)).encode()
        if model is not None:
            self.metrics.model_loaded.set(1)

    def load(self) -> None:
        import sentitune

        try:
            self.threads = model_threads(self.batcher.workers, self.config.workers)
            if self.threads:  # a lone call's count (on the primary model thread): the bf16 check and _measure run as the server will
                import torch

                torch.set_num_threads(self.threads[0])
            model = sentitune.load(self.config.model_path)  # the fastest faithful path: sentitune.load decides
            self.path = model.inference_path
            model.to(self.config.device).enable_cache(self.config.cache_size)
            # MAX_LENGTH caps the tokens per text of the methods that truncate by the artifact's setting
            model.meta.max_length = min(model.meta.max_length, self.config.max_length)
            model.predict(["warm-up: the first call pays for lazy initialisation"])
            self._measure(model)
        except Exception as exc:  # reported by /health as 503 "error", the process stays up
            self.load_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error("model failed to load", extra={"model_path": self.config.model_path, "error": self.load_error})
            return
        self.model = model
        self.metrics.model_loaded.set(1)
        # what loading made lives as long as the server: kept out of the collector's full passes, which
        # otherwise walk it every few thousand requests (a pause every such request waits for)
        gc.collect()
        gc.freeze()
        log.info("model loaded", extra={
            "model_path": self.config.model_path or "default", "method": model.meta.method, "path": self.path,
            "inline": self.batcher.inline, "ms_per_text": round(self.batcher.cost.per_text * 1000, 3),
        })

    def _measure(self, model) -> None:
        """Time a full micro-batch of short texts, best of three (new texts each time: the score cache
        would answer repeats): the first estimate of the model's seconds per text, for the queue's time
        limit, and whether the model is cheap enough to call inline."""
        # timed as an inline model runs: with one BLAS thread, kept if inline. On the event loop a second
        # BLAS thread only contends with the loop for a core: the fast preset's 32-text batch took 16-20 ms
        # with numpy's two OpenBLAS threads on a 2-core machine busy with another job, 1.2-4 ms with one
        blas = threadpool_limits(1, user_api="blas")
        seconds = min(self._batch_seconds(model, run) for run in range(3))
        self.batcher.cost.observe(self.config.batch_size, seconds)
        self.batcher.inline = seconds < INLINE_BELOW_S
        if not self.batcher.inline:
            blas.restore_original_limits()

    def _batch_seconds(self, model, run: int) -> float:
        texts = [f"warm-up text {run}.{i}: a short sentence, as most are" for i in range(self.config.batch_size)]
        start = time.monotonic()
        model.predict_records(texts)
        return time.monotonic() - start

    def _predict(self, texts: list[str]) -> list[dict]:
        # runs on a model thread (the event loop's when inline); torch's thread count is per thread
        with self._calls_changed:
            # a call beside one on every core would oversubscribe the cores, and torch's spinning helper
            # threads then wait for each other (p99 at 8 connections 68 -> 200-360 ms): it waits instead
            self._calls_changed.wait_for(lambda: not self._wide)
            wide = self._wide = (bool(self.threads) and self.threads[0] > self.threads[1] and self._calls == 0
                                 and self.batcher.on_primary_thread())
            self._calls += 1
        try:
            if self.threads:
                import torch

                torch.set_num_threads(self.threads[0] if wide else self.threads[1])
            records = self.model.predict_records(texts)
        finally:
            with self._calls_changed:
                self._calls -= 1
                self._wide = self._wide and not wide
                self._calls_changed.notify_all()
        self.metrics.texts.inc(len(texts))
        return records

    # --- keys ---------------------------------------------------------------------------------
    def key_matches(self, given: str) -> bool:
        # compare against every key, in constant time, so timing reveals neither key nor position
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(given.encode(), key)
        return matched

    def client_id(self, key: str) -> str:
        return "key:" + hmac.new(self.key_id_secret, key.encode(), hashlib.sha256).hexdigest()[:16]

    # --- requests -----------------------------------------------------------------------------
    def check_text(self, text: str, where: str) -> str:
        # the body schemas already cap the length (schemas.text_type); this is what they cannot say
        problem = text_problem(text)
        if problem:
            raise ApiError(400, "invalid_input", f"{where} {problem}")
        return text

    def ready_model(self):
        if self.model is None:
            detail = f"model failed to load: {self.load_error}" if self.load_error else "model is loading"
            raise ApiError(503, "not_ready", detail, {"Retry-After": "5"})
        return self.model

    async def score(self, texts: list[str]) -> list[dict]:
        self.ready_model()
        return await self._answered(self.batcher.submit(texts))

    async def raw_scores(self, texts: list[str]) -> list[dict[str, float]]:
        """Per text and label, the model's logit divided by its temperature (softmax of these is the
        calibrated probability ``score`` gives). Not cached and not batched with other requests."""
        model = self.ready_model()

        def compute(batch: list[str]) -> list[dict[str, float]]:
            z = np.asarray(model.logits(batch), dtype=np.float64) / model.temperature
            self.metrics.texts.inc(len(batch))
            return [{label: float(v) for label, v in zip(model.labels, row)} for row in z]

        return await self._answered(self.batcher.call(compute, texts))

    async def check_token_counts(self, texts: list[str]) -> None:
        """400 for the first text over the token window of the model that reads it (for clients that
        ask not to truncate). A router's text is held to its own route's window: none for a route
        without a tokenizer (tfidf reads the whole text)."""
        model = self.ready_model()

        # runs on the model thread: a tokenizer is not thread-safe
        def too_long(batch: list[str]) -> list[tuple[int, int, int]]:  # (index, tokens, window): texts over it
            readers = model.readers_for(batch) if isinstance(model, RouterModel) else [model] * len(batch)
            found = []
            for reader in {id(r): r for r in readers}.values():
                if not reader.capabilities.tokenizer:
                    continue
                idx = [i for i, r in enumerate(readers) if r is reader]
                ids = reader.tokenizer([batch[i] for i in idx], truncation=False, verbose=False)["input_ids"]
                limit = reader.meta.max_length
                found += [(i, len(x), limit) for i, x in zip(idx, ids) if len(x) > limit]
            return sorted(found)

        if found := await self._answered(self.batcher.call(too_long, texts)):
            i, n, limit = found[0]
            where = "inputs" if len(texts) == 1 else f"inputs[{i}]"
            message = f"{where} has {n} tokens; the model reads {limit} (send truncate: true)"
            raise ApiError(400, "invalid_input", message)

    async def _answered(self, call: Awaitable[list]) -> list:
        """A model call's result, with bad input as 400 and a full queue as 503."""
        try:
            return await call
        except SentituneError as exc:
            raise ApiError(400, "invalid_input", str(exc)) from None
        except QueueFull as exc:
            self.metrics.overloaded.inc()
            message, retry_after = busy_answer(exc)
            raise ApiError(503, "overloaded", message, {"Retry-After": retry_after}) from None

    async def reasoning(self, texts: list[str], labels: list[str]) -> list[str | None]:
        """Explanations from models that can give one (instruct LLMs); None for the rest."""
        if not self.model.capabilities.explain:
            return [None] * len(texts)
        return await asyncio.get_running_loop().run_in_executor(None, self.model.explain, texts, labels)

    # --- health -------------------------------------------------------------------------------
    def model_info(self) -> ModelInfo:
        if self.model is None:
            return ModelInfo(name=self.config.model_path or "default")
        meta = self.model.meta
        return ModelInfo(
            name=meta.base_model or self.config.model_path or "default",
            method=meta.method,
            version=f"format {meta.format_version}, sentitune {meta.sentitune_version}, created {meta.created}",
            path=self.path,
        )

    def health(self) -> HealthResponse:
        status = "ok" if self.model is not None else ("error" if self.load_error else "loading")
        return HealthResponse(
            status=status, model_loaded=self.model is not None, gpu_available=gpu_available(),
            memory_usage=memory_usage(), uptime=time.monotonic() - self.started, model=self.model_info(),
            detail=self.load_error,
        )
