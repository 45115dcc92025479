"""Dynamic micro-batching: concurrent requests share one model call.

A transformer scores 32 texts in far less time than 32 single calls, so under concurrency the
requests that queued while the model was busy (at most ``max_batch_size``) run as one batch;
``max_wait_ms`` > 0 additionally waits that long for company (benchmarks/load.py: no gain on CPU).
The model runs on ``workers`` model threads, so the event loop keeps accepting requests while
batches are being scored: with two, one batch is scored while the next one forms and starts on the
other core (a transformer's TorchScript graph and onnxruntime run without the GIL). On 2 Zen 4 cores
two single-threaded calls at once served 396-405 requests/s at 64 connections where one call at a
time on both cores served 335 (benchmarks/load.py): small matrices keep one core busier than two. A model cheap enough that
the hand-off costs more than its call (``inline``: numpy or scikit-learn models, which hold the GIL
anyway) is called on the event loop itself, still batched: the batch is what queued meanwhile.

Backpressure (``refusal``): a request is admitted while the texts ahead of it, at the recent model
seconds per text (``CostEstimate``), would be answered within ``max_queue_wait_s``, and while no
more than ``max_queue`` texts wait; otherwise ``submit`` raises ``QueueFull`` at once (the server
answers 503 + Retry-After) instead of letting the queue and every client's latency grow. A count
alone bounds nothing: under overload each model call slows (the refusals take CPU), so 256 queued
texts meant 5 s. ``full()`` lets the server refuse a request before doing any work for it
(guards.ShedWhenBusy). ``on_timing`` receives each text's seconds in the queue and each model call's
seconds, so the metrics say whether a slow answer waited for the model or for the model itself.
A batch that fails is scored again text by text, so one request's input never fails another's.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence


class QueueFull(Exception):
    """The model has more work waiting than the server admits; the client should retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CostEstimate:
    """Recent model seconds per text: moving averages of each call's seconds and texts (their ratio
    weighs a call by its texts). Written on the model thread as one tuple, read on the event loop."""

    def __init__(self, weight: float = 0.2):
        self.weight = weight
        self._avg: tuple[float, float] | None = None  # (seconds, texts) per call

    def observe(self, texts: int, seconds: float) -> None:
        if texts < 1:
            return
        if self._avg is None:
            self._avg = (seconds, float(texts))
            return
        s, n, w = *self._avg, self.weight
        self._avg = (s + w * (seconds - s), n + w * (texts - n))

    @property
    def per_text(self) -> float:
        """Seconds per text; 0 before any call was measured (nothing is refused for time then)."""
        return 0.0 if self._avg is None else self._avg[0] / self._avg[1]


def refusal(waiting: int, in_model: int, n: int, per_text: float,
            max_queue: int | None, max_queue_wait_s: float | None) -> QueueFull | None:
    """Why ``n`` more texts are not admitted (None: they are), given ``waiting`` texts queued and
    ``in_model`` being scored. An empty queue always admits, so a request larger than either limit
    is not refused forever; it waits for at most the call in progress."""
    if not waiting:
        return None
    if max_queue is not None and waiting + n > max_queue:
        return QueueFull(f"{waiting} texts are waiting for the model (limit {max_queue})",
                         retry_after_s=(waiting + in_model) * per_text)
    answered_in = (waiting + in_model + n) * per_text
    if max_queue_wait_s is not None and answered_in > max_queue_wait_s:
        return QueueFull(f"the texts waiting for the model take about {answered_in:.2f} s "
                         f"(limit {max_queue_wait_s:g} s)", retry_after_s=answered_in)
    return None


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
        max_queue_wait_s: float | None = None,
        workers: int = 1,
    ):
        self.predict = predict
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self.on_batch = on_batch or (lambda n: None)
        # (each text's seconds in the queue, the model call's seconds): where a request's time went
        self.on_timing = on_timing or (lambda waits, seconds: None)
        self.max_queue = max_queue
        self.max_queue_wait_s = max_queue_wait_s
        self.workers = max(1, workers)
        self.cost = CostEstimate()
        self.inline = False  # call the model on the event loop (set once the model is known to be cheap)
        self.waiting = 0  # texts submitted and not yet handed to the model
        self.in_model = 0  # texts handed to the model and not yet answered
        # One executor per model thread, the first preferred when idle (``primary``): torch's OpenMP
        # keeps helper threads per thread that calls it multi-threaded, and once a process has more
        # of those than cores libgomp stops spinning and wakes them through the kernel on every
        # parallel region. On 2 Zen 4 cores one text on two threads took 4.5 ms when one thread made
        # every call and 11 ms when another thread had loaded the model; so the model loads on the
        # primary thread and only that thread runs on more than one core (Service._predict).
        self._primary_ident: int | None = None
        self._executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sentitune-model-{i}",
                               initializer=None if i else self._mark_primary)
            for i in range(self.workers)
        ]
        self._pending = [0] * self.workers  # calls handed to each model thread and not yet back
        self._queue: asyncio.Queue[tuple[str, asyncio.Future, float]] | None = None
        self._worker: asyncio.Future | None = None

    def _mark_primary(self) -> None:
        self._primary_ident = threading.get_ident()

    @property
    def primary(self) -> ThreadPoolExecutor:
        """The model thread that loads the model and is the only one to run it on several cores."""
        return self._executors[0]

    def on_primary_thread(self) -> bool:
        return threading.get_ident() == self._primary_ident

    async def start(self) -> None:
        if self.enabled and self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.gather(*(self._run() for _ in range(self.workers)))

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
        for executor in self._executors:
            executor.shutdown(wait=True)

    async def submit(self, texts: Sequence[str]) -> list[dict]:
        """Score ``texts``; results in the same order. Raises ``QueueFull`` when they are not admitted."""
        self._admit(len(texts))
        if not self.enabled or self._queue is None:
            # one model call per request: the baseline the load benchmark compares against
            return await self._on_model_thread(self._predict_unbatched, list(texts), time.monotonic())
        futures = []
        now = time.monotonic()
        loop = asyncio.get_running_loop()
        for text in texts:
            fut = loop.create_future()
            self._queue.put_nowait((text, fut, now))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

    async def call(self, fn: Callable[[list[str]], list], texts: Sequence[str]) -> list:
        """``fn(texts)`` alone on the model thread, under the same admission (for rarer model calls
        that the shared batches do not cover, e.g. raw scores)."""
        self._admit(len(texts))
        return await self._on_model_thread(fn, list(texts))

    @property
    def per_text_s(self) -> float:
        """Model seconds per text of the server as a whole: each call's, shared by the calls that run at once."""
        return self.cost.per_text / self.workers

    @property
    def expected_wait_s(self) -> float:
        """Seconds until the texts now waiting or being scored are answered, at the recent cost per text."""
        return (self.waiting + self.in_model) * self.per_text_s

    def full(self) -> QueueFull | None:
        """Why no request would be admitted now (None: one text would be)."""
        return self._refusal(1)

    def _refusal(self, n: int) -> QueueFull | None:
        return refusal(self.waiting, self.in_model, n, self.per_text_s, self.max_queue, self.max_queue_wait_s)

    def _admit(self, n: int) -> None:
        if (refused := self._refusal(n)) is not None:
            raise refused
        self.waiting += n

    async def _on_model_thread(self, fn: Callable, texts: list[str], *args) -> list:
        """``fn(texts, *args)`` on the model thread (or inline, on the event loop). Its texts count as
        waiting until ``fn`` starts, then as in the model until it ends. The counts change only on the
        event loop's thread, each move at most once, whichever comes first of ``fn`` starting and the
        call ending (an executor shut down, or a caller cancelled before ``fn`` left the executor's
        queue: then ``fn`` never runs)."""
        loop, inline, n = asyncio.get_running_loop(), self.inline, len(texts)
        where = ["waiting"]

        def started() -> None:
            if where[0] == "waiting":
                self.waiting -= n
                self.in_model += n
                where[0] = "in_model"

        def run() -> list:
            if inline:
                started()
            else:
                loop.call_soon_threadsafe(started)
            return fn(texts, *args)

        # the least busy model thread, the primary first when it is idle
        thread = min(range(self.workers), key=lambda i: (self._pending[i], i))
        self._pending[thread] += 1
        try:
            return run() if inline else await loop.run_in_executor(self._executors[thread], run)
        finally:
            self._pending[thread] -= 1
            if where[0] == "waiting":
                self.waiting -= n
            elif where[0] == "in_model":
                self.in_model -= n
            where[0] = "done"

    def _predict_unbatched(self, texts: list[str], queued: float) -> list[dict]:
        self.on_batch(len(texts))
        start = time.monotonic()
        try:
            return self.predict(texts)
        finally:
            self._timed(texts, [start - queued] * len(texts), start)

    def _timed_batch(self, texts: list[str], waits: list[float]) -> list[dict | Exception]:
        start = time.monotonic()
        try:
            return self._predict_each_on_failure(texts)
        finally:
            self._timed(texts, waits, start)

    def _timed(self, texts: list[str], waits: list[float], start: float) -> None:
        seconds = time.monotonic() - start
        self.cost.observe(len(texts), seconds)
        self.on_timing(waits, seconds)

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

    async def _next_batch(self) -> list[tuple[str, asyncio.Future, float]]:
        """What queued, up to ``max_batch_size`` (waiting up to ``max_wait`` for more)."""
        assert self._queue is not None
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
        return batch

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._next_batch()
            texts = [text for text, _, _ in batch]
            taken = time.monotonic()
            waits = [taken - queued for _, _, queued in batch]
            self.on_batch(len(texts))
            try:
                results = await self._on_model_thread(self._timed_batch, texts, waits)
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
            if self.inline:  # the answered requests respond before the next batch holds the loop
                await asyncio.sleep(0)
