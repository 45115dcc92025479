"""Dynamic micro-batching: concurrent requests share one model call.

A transformer scores 32 texts in far less time than 32 single calls, so under concurrency the
requests that queued while the model was busy (at most ``max_batch_size``) run as one batch;
``max_wait_ms`` > 0 additionally waits that long for company (benchmarks/load.py: no gain on CPU).
The model runs on a single worker thread, so the event loop keeps accepting requests while a batch
is being scored and the model is never called from two threads at once.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[list[str]], list[dict]],
        max_batch_size: int = 32,
        max_wait_ms: float = 0.0,
        enabled: bool = True,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.predict = predict
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self.on_batch = on_batch or (lambda n: None)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentitune-model")
        self._queue: asyncio.Queue[tuple[str, asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None

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
        """Score ``texts``; results in the same order."""
        loop = asyncio.get_running_loop()
        if not self.enabled or self._queue is None:
            # one model call per request: the baseline the load benchmark compares against
            self.on_batch(len(texts))
            return await loop.run_in_executor(self._executor, self.predict, list(texts))
        futures = []
        for text in texts:
            fut = loop.create_future()
            self._queue.put_nowait((text, fut))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

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
            texts = [text for text, _ in batch]
            self.on_batch(len(texts))
            try:
                results = await loop.run_in_executor(self._executor, self.predict, texts)
            except Exception as exc:  # the requests in this batch fail; the server keeps going
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            else:
                for (_, fut), result in zip(batch, results):
                    if not fut.done():  # the client may have gone away
                        fut.set_result(result)
            finally:
                for _ in batch:
                    self._queue.task_done()
