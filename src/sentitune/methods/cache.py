"""Caches of recent texts' raw scores: an in-process LRU, or Redis when ``REDIS_URL`` is set.

A service sees the same texts again and again (retweets, templated reviews, client retries); a hit
skips tokenization and the model. Both caches hold the raw two-column logits, keyed by text; the
Redis cache is shared by every worker and replica pointed at it, so its keys also name the model.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Callable
from urllib.parse import urlsplit

import numpy as np

from sentitune.config import runtime_settings
from sentitune.errors import SentituneError

log = logging.getLogger("sentitune.cache")
DEFAULT_TTL_S = 86_400  # a day: long enough for repeats, short enough that old models' keys expire


class LruCache:
    """The ``size`` most recently used distinct texts, in this process. The server's model threads
    share it: a lock keeps one thread from evicting a text between another's lookup and its move."""

    def __init__(self, size: int):
        self.size = size
        self.rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def get_many(self, texts: list[str]) -> list[np.ndarray | None]:
        with self.lock:
            found = [self.rows.get(t) for t in texts]
            for text, row in zip(texts, found):
                if row is not None:
                    self.rows.move_to_end(text)
        return found

    def put_many(self, texts: list[str], rows: np.ndarray) -> None:
        with self.lock:
            for text, row in zip(texts, rows):
                self.rows[text] = row
                self.rows.move_to_end(text)
            while len(self.rows) > self.size:
                self.rows.popitem(last=False)


def _public(url: str) -> str:
    """The URL without its password, for messages: REDIS_URL often carries credentials."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


class RedisCache:
    """Scores in Redis: key = hash of (model id, text), value = the two float64 logits, with a TTL.

    An unreachable Redis at start is an error (the operator asked for a shared cache; silently running
    without one would hide the mistake). A Redis that fails later only costs the cache: the scores
    are computed as if it were off, and the outage is logged once, so requests never fail for it.
    """

    def __init__(self, url: str, model_id: Callable[[], str], ttl_s: int = DEFAULT_TTL_S):
        try:
            import redis
        except ImportError:
            raise SentituneError("REDIS_URL is set but the redis package is missing: pip install 'sentitune[cache]'") from None
        self.errors = (redis.RedisError, OSError)
        self.model_id, self.ttl_s, self.where, self.healthy = model_id, ttl_s, _public(url), True
        try:
            self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            self.client.ping()
        except (ValueError, *self.errors) as exc:
            raise SentituneError(f"REDIS_URL {self.where}: cannot use Redis: {str(exc).splitlines()[0]}") from None

    def _keys(self, texts: list[str]) -> list[str]:
        # the model id changes with anything that changes the scores (weights, method, max_length)
        prefix = (self.model_id() + "\0").encode()
        return ["sentitune:" + hashlib.blake2b(prefix + t.encode(), digest_size=16).hexdigest() for t in texts]

    def _failed(self, exc: Exception) -> None:
        if self.healthy:
            log.warning("Redis cache at %s unavailable, scoring without it: %s", self.where, exc)
        self.healthy = False

    def get_many(self, texts: list[str]) -> list[np.ndarray | None]:
        try:
            values = self.client.mget(self._keys(texts))
        except self.errors as exc:
            self._failed(exc)
            return [None] * len(texts)
        self.healthy = True
        return [np.frombuffer(v, dtype="<f8").copy() if v is not None and len(v) == 16 else None for v in values]

    def put_many(self, texts: list[str], rows: np.ndarray) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, row in zip(self._keys(texts), rows):
            pipe.set(key, np.asarray(row, dtype="<f8").tobytes(), ex=self.ttl_s)
        try:
            pipe.execute()
        except self.errors as exc:
            self._failed(exc)


def make_cache(size: int, model_id: Callable[[], str]) -> LruCache | RedisCache | None:
    """Redis when ``REDIS_URL`` is set (``REDIS_TTL`` seconds per entry), else an LRU of ``size`` texts."""
    if size <= 0:
        return None
    settings = runtime_settings()  # REDIS_URL and REDIS_TTL, validated there
    if not settings.redis_url:
        return LruCache(size)
    return RedisCache(settings.redis_url, model_id, settings.redis_ttl)
