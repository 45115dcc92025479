"""The predictor's score cache in a real Redis (REDIS_URL): shared across loads, keyed per model,
expiring, and never the reason a prediction fails. Skips where redis-server is not installed
(.ci/run installs it)."""

import shutil
import subprocess
import time
from contextlib import contextmanager

import numpy as np
import pytest

import sentitune
from sentitune.errors import SentituneError
from sentitune.methods.cache import RedisCache
from conftest import free_port

redis = pytest.importorskip("redis", reason="the redis package is missing: pip install 'sentitune[cache]'")

TEXTS = ["great food", "awful service", "great food", "cold and late"]




@contextmanager
def redis_server(tmp_path):
    """A throwaway redis-server on a free port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start within 5 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def redis_url(tmp_path, monkeypatch):
    with redis_server(tmp_path) as url:
        monkeypatch.setenv("REDIS_URL", url)
        yield url


def test_scores_are_shared_through_redis_with_a_ttl(redis_url, tfidf_model_dir, monkeypatch):
    monkeypatch.setenv("REDIS_TTL", "600")
    plain = sentitune.load(tfidf_model_dir).predict_proba(TEXTS)
    first = sentitune.load(tfidf_model_dir).enable_cache(100)
    assert isinstance(first._cache, RedisCache)
    np.testing.assert_allclose(first.predict_proba(TEXTS), plain)
    assert (first.cache_misses, first.cache_hits) == (3, 1)

    # another worker (a second load of the same model) finds every text in Redis
    second = sentitune.load(tfidf_model_dir).enable_cache(100)
    np.testing.assert_allclose(second.predict_proba(TEXTS), plain)
    assert (second.cache_misses, second.cache_hits) == (0, 4)

    client = redis.Redis.from_url(redis_url)
    keys = client.keys("sentitune:*")
    assert len(keys) == 3  # one per distinct text, each holding the two float64 logits
    assert all(len(client.get(k)) == 16 and 0 < client.ttl(k) <= 600 for k in keys)


def test_different_models_never_share_entries(redis_url, tfidf_model_dir):
    sentitune.load(tfidf_model_dir).enable_cache(100).predict(TEXTS)
    default = sentitune.load().enable_cache(100)
    proba = default.predict_proba(TEXTS)
    assert default.cache_hits == 1 and default.cache_misses == 3  # the tfidf entries were not reused
    np.testing.assert_allclose(proba, sentitune.load().predict_proba(TEXTS), atol=1e-6)


def test_unreachable_redis_is_a_one_line_error_without_the_password(tfidf_model_dir, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://user:s3cret@127.0.0.1:{free_port()}/0")
    with pytest.raises(SentituneError, match=r"^REDIS_URL redis://127\.0\.0\.1:\d+/0: cannot use Redis") as err:
        sentitune.load(tfidf_model_dir).enable_cache(100)
    assert "s3cret" not in str(err.value) and "\n" not in str(err.value)


def test_bad_ttl_is_a_clear_error(redis_url, tfidf_model_dir, monkeypatch):
    monkeypatch.setenv("REDIS_TTL", "a day")
    with pytest.raises(SentituneError, match="REDIS_TTL"):
        sentitune.load(tfidf_model_dir).enable_cache(100)


def test_a_redis_outage_after_start_costs_only_the_cache(tmp_path, tfidf_model_dir, monkeypatch, caplog):
    plain = sentitune.load(tfidf_model_dir).predict_proba(TEXTS)
    with redis_server(tmp_path) as url:
        monkeypatch.setenv("REDIS_URL", url)
        model = sentitune.load(tfidf_model_dir).enable_cache(100)
        model.predict(TEXTS[:1])
    # the server is gone: predictions are computed as if the cache were off, and the outage is logged
    np.testing.assert_allclose(model.predict_proba(TEXTS), plain)
    assert model.cache_misses == 1 + 3
    assert "unavailable" in caplog.text


def test_cache_size_zero_turns_redis_off_too(redis_url, tfidf_model_dir):
    model = sentitune.load(tfidf_model_dir).enable_cache(0)
    assert model._cache is None
    model.predict(TEXTS)
    assert redis.Redis.from_url(redis_url).dbsize() == 0
