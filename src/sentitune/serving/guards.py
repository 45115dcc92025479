"""What stops a client from taking more than its share: rate limits, failed-auth throttling, body size,
and the early 503 while the model queue is full.

Rate limits use the ``limits`` library: a sliding-window counter per client, in Redis when
``redis_url`` is set (one limit shared by every worker and replica), else in process memory, where
each counter expires with its window so memory stays bounded by the clients seen in that window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Callable

from fastapi import HTTPException
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from sentitune.config import ServeConfig
from sentitune.serving.batching import QueueFull
from sentitune.serving.errors import new_request_id, overloaded_answer, too_large_message

log = logging.getLogger("sentitune.serving")


def limit_storage(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    # limits' names for the same URLs: async+redis://, async+rediss://, async+redis+unix://
    uri = "async+" + ("redis+" + redis_url if redis_url.startswith("unix:") else redis_url)
    # wrap_exceptions: a Redis outage raises StorageError, which the limiter lets through (fails open)
    return storage_from_string(uri, implementation="redispy", wrap_exceptions=True)


class Limiter:
    """``rate_limit_per_hour`` units per client (a request, or a batch's texts) and
    ``auth_failures_per_minute`` failed authentications per client address."""

    def __init__(self, config: ServeConfig):
        self.strategy = SlidingWindowCounterRateLimiter(limit_storage(config.redis_url))
        self.requests = RateLimitItemPerHour(max(config.rate_limit_per_hour, 0), namespace="sentitune-requests")
        self.auth_failures = RateLimitItemPerMinute(max(config.auth_failures_per_minute, 0), namespace="sentitune-auth")

    async def charge(self, client: str, cost: int = 1) -> float | None:
        """Take ``cost`` units; None if allowed, else the seconds until the client may retry."""
        return await self._hit(self.requests, client, cost)

    async def auth_blocked(self, address: str) -> float | None:
        """Seconds until ``address`` may try a key again, or None if it may now."""
        try:
            if await self.strategy.test(self.auth_failures, address):
                return None
            return await self._retry_after(self.auth_failures, address)
        except StorageError as exc:
            log.warning("rate limit storage failed; allowing the request", extra={"error": str(exc)})
            return None

    async def auth_failed(self, address: str) -> None:
        await self._hit(self.auth_failures, address, 1)

    async def _hit(self, item: RateLimitItem, key: str, cost: int) -> float | None:
        try:
            if await self.strategy.hit(item, key, cost=cost):
                return None
            return await self._retry_after(item, key)
        except StorageError as exc:
            log.warning("rate limit storage failed; allowing the request", extra={"error": str(exc)})
            return None

    async def _retry_after(self, item: RateLimitItem, key: str) -> float:
        stats = await self.strategy.get_window_stats(item, key)
        return max(1.0, stats.reset_time - time.time())


def busy_answer(refused: QueueFull) -> tuple[str, str]:
    """The 503's message and Retry-After value for a refused request (one wording, wherever refused)."""
    return f"server is busy: {refused}; retry shortly", retry_seconds(refused.retry_after_s)


def retry_seconds(seconds: float) -> str:
    """Retry-After: whole seconds, at least 1 (a 0 invites the retry at once), at most a day."""
    if math.isnan(seconds):
        return "1"
    return str(math.ceil(min(max(seconds, 1.0), 86_400.0)))


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


class ShedWhenBusy:
    """ASGI middleware, in front of the whole app: while ``busy()`` gives a refusal (the model has more
    work waiting than the server admits: MAX_QUEUE texts, or MAX_QUEUE_WAIT_S seconds of them) a POST,
    the method of every route that scores texts, is answered 503 + Retry-After before routing, auth
    and body parsing. The same refusal made after them (``Service.score``) cost about as much
    event-loop time as a scored request: at 1,024 connections every request then queued for the
    loop behind the refusals. Counted in ``sentitune_overloaded_total``; keeps the connection open.

    The 503 is sent after ``hold_s`` (SHED_HOLD_S; a held request costs no CPU): clients that retry at
    once made refusals the server's main work. On 2 AMD EPYC cores at 256 connections (wrk, default
    preset) answering ~22,000 refusals/s slowed each 32-text model call from 70 to 250 ms and left 100
    answers/s; held 0.25 s, 1,200 refusals in 8 s and 400 answers/s (benchmarks/load.py).
    """

    def __init__(self, app, busy: Callable[[], QueueFull | None], on_shed: Callable[[], None], hold_s: float = 0.0):
        self.app, self.busy, self.on_shed, self.hold_s = app, busy, on_shed, hold_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or (refused := self.busy()) is None:
            return await self.app(scope, receive, send)
        self.on_shed()
        if self.hold_s:
            await asyncio.sleep(self.hold_s)
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")[:64]
        rid = given.decode("latin-1") or new_request_id()
        message, retry_after = busy_answer(refused)
        headers, body = overloaded_answer(rid, message, retry_after=retry_after)
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
