"""Dynamic micro-batching: concurrent requests share one model call.

A transformer scores 32 texts in far less time than 32 single calls, so under concurrency the
requests that queued while the model was busy (at most ``max_batch_size``) run as one batch;
``max_wait_ms`` > 0 additionally waits that long for company (benchmarks/load.py: no gain on CPU).
The model runs on a single worker thread, so the event loop keeps accepting requests while a batch
is being scored and the model is never called from two threads at once.

Backpressure: once ``max_queue`` texts wait for the model, ``submit`` raises ``QueueFull`` at once
(the server answers 503 + Retry-After) instead of letting the queue and every client's latency grow;
``full()`` lets the server refuse a request before doing any work for it (guards.ShedWhenBusy).
``on_timing`` receives each text's seconds in the queue and each model call's seconds, so the
metrics say whether a slow answer waited for the model or for the model itself.
A batch that fails is scored again text by text, so one request's input never fails another's.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence


class QueueFull(Exception):
    """More texts wait for the model than the queue admits; the client should retry later."""


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[list[str]], list[dict]],
        max_batch_size: int = 32,
        max_wait_ms: float = 0.0,
        enabled: bool = True,
        on_batch: Callable[[int], None] | None = None,
        max_queue: int | None = None,
        on_timing: Callable[[list[float], float], None] | None = None,
    ):
        self.predict = predict
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self.on_batch = on_batch or (lambda n: None)
        # (each text's seconds in the queue, the model call's seconds): where a request's time went
        self.on_timing = on_timing or (lambda waits, seconds: None)
        self.max_queue = max_queue
        self.waiting = 0  # texts submitted and not yet handed to the model
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentitune-model")
        self._queue: asyncio.Queue[tuple[str, asyncio.Future, float]] | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        if self.enabled and self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop (graceful shutdown loses no accepted request)."""
        if self._worker is not None and self._queue is not None:
            await self._queue.join()
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        self._executor.shutdown(wait=True)

    async def submit(self, texts: Sequence[str]) -> list[dict]:
        """Score ``texts``; results in the same order. Raises ``QueueFull`` when the queue is full."""
        self._admit(len(texts))
        loop = self._loop = asyncio.get_running_loop()
        if not self.enabled or self._queue is None:
            # one model call per request: the baseline the load benchmark compares against
            return await loop.run_in_executor(self._executor, self._predict_unbatched, list(texts), time.monotonic())
        futures = []
        now = time.monotonic()
        for text in texts:
            fut = loop.create_future()
            self._queue.put_nowait((text, fut, now))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

    async def call(self, fn: Callable[[list[str]], list], texts: Sequence[str]) -> list:
        """``fn(texts)`` alone on the model thread, under the same queue limit (for rarer model calls
        that the shared batches do not cover, e.g. raw scores)."""
        self._admit(len(texts))
        loop = self._loop = asyncio.get_running_loop()

        def run(batch: list[str]) -> list:
            self._loop.call_soon_threadsafe(self._taken, len(batch))
            return fn(batch)

        return await loop.run_in_executor(self._executor, run, list(texts))

    def full(self) -> bool:
        """No request would be admitted now (``_admit`` refuses any n >= 1)."""
        return self.max_queue is not None and self.waiting >= self.max_queue

    def _admit(self, n: int) -> None:
        # an empty queue always admits, so a request larger than max_queue is not refused forever
        if self.max_queue is not None and self.waiting and self.waiting + n > self.max_queue:
            raise QueueFull(f"{self.waiting} texts are waiting for the model (limit {self.max_queue})")
        self.waiting += n

    def _taken(self, n: int) -> None:
        self.waiting -= n

    def _predict_unbatched(self, texts: list[str], queued: float) -> list[dict]:
        # runs on the model thread: the count is only ever changed on the event loop's thread
        self._loop.call_soon_threadsafe(self._taken, len(texts))
        self.on_batch(len(texts))
        start = time.monotonic()
        try:
            return self.predict(texts)
        finally:
            self.on_timing([start - queued] * len(texts), time.monotonic() - start)

    def _timed_batch(self, texts: list[str], waits: list[float]) -> list[dict | Exception]:
        start = time.monotonic()
        try:
            return self._predict_each_on_failure(texts)
        finally:
            self.on_timing(waits, time.monotonic() - start)

    def _predict_each_on_failure(self, texts: list[str]) -> list[dict | Exception]:
        """Score the batch; if that fails, each text alone, so only the texts that fail get the error."""
        try:
            return self.predict(texts)
        except Exception as exc:
            if len(texts) == 1:
                return [exc]
        out: list[dict | Exception] = []
        for text in texts:
            try:
                out.extend(self.predict([text]))
            except Exception as exc:
                out.append(exc)
        return out

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch_size:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            texts = [text for text, _, _ in batch]
            taken = time.monotonic()
            waits = [taken - queued for _, _, queued in batch]
            self._taken(len(texts))
            self.on_batch(len(texts))
            try:
                results = await loop.run_in_executor(self._executor, self._timed_batch, texts, waits)
            except Exception as exc:  # e.g. the executor was shut down; the server keeps going
                results = [exc] * len(batch)
            for (_, fut, _), result in zip(batch, results):
                if fut.done():  # the client may have gone away
                    continue
                if isinstance(result, Exception):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
            for _ in batch:
                self._queue.task_done()
