"""Abuse through the real server: bad Unicode, a model failing on one text, overload, rate-limit
evasion, key guessing, oversized or slow headers. Each test failed on the server before issue 17."""

from __future__ import annotations

import ast
import asyncio
import math
import re
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from serving_helpers import KEY, assert_error, free_port, live_server, post, read_until_closed

import sentitune
import sentitune.serving
from sentitune.config import ServeConfig
from sentitune.errors import SentituneError
from sentitune.serving.app import create_app
from sentitune.serving.deps import require_key

SURROGATE_BODY = b'{"text": "abc \\ud800 def"}'  # a JSON-escaped lone surrogate: valid JSON, not UTF-8
INVISIBLE = "\u200b\u202e\ufeff\x00\u2066 \t"  # zero-width space, RTL override, BOM, NUL, isolate


def raw_post(url: str, path: str, content: bytes, key: str | None = KEY) -> httpx.Response:
    headers = {"content-type": "application/json", **({"X-API-Key": key} if key else {})}
    return httpx.post(f"{url}{path}", content=content, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def tfidf_api(tfidf_model_dir):
    config = ServeConfig(model_path=str(tfidf_model_dir), api_keys=[KEY], rate_limit_per_hour=1_000_000)
    with live_server(config) as url:
        yield url


# ------------------------------------------------------------------------------------- 2a input
def test_lone_surrogates_are_400_naming_the_field(tfidf_api):
    assert_error(raw_post(tfidf_api, "/api/v1/analyze", SURROGATE_BODY), 400, "text is not valid UTF-8")
    assert_error(raw_post(tfidf_api, "/analyze-sentiment", SURROGATE_BODY), 400, "text is not valid UTF-8")
    batch = b'{"texts": ["a fine day", "abc \\udc00"]}'
    assert_error(raw_post(tfidf_api, "/api/v1/analyze/batch", batch), 400, "texts.1 is not valid UTF-8")


def test_invisible_only_text_is_empty(tfidf_api, tfidf_model_dir):
    assert_error(post(tfidf_api, "/api/v1/analyze", {"text": INVISIBLE}), 400, "text is empty")
    assert_error(post(tfidf_api, "/api/v1/analyze/batch", {"texts": ["good", INVISIBLE]}), 400, "texts[1] is empty")
    assert post(tfidf_api, "/api/v1/analyze", {"text": INVISIBLE + "great"}).status_code == 200
    model = sentitune.load(tfidf_model_dir)  # the Python API (and so the CLI) rejects them too, in one line
    with pytest.raises(SentituneError, match=r"^text 1 is empty$"):
        model.predict(["fine", INVISIBLE])
    with pytest.raises(SentituneError, match="text 0 is not valid UTF-8"):
        model.predict(["bad \ud800"])


def test_surrogate_requests_do_not_fail_concurrent_valid_ones(tfidf_api):
    async def burst():
        async with httpx.AsyncClient(base_url=tfidf_api, headers={"X-API-Key": KEY}, timeout=60) as client:
            good = [client.post("/api/v1/analyze", json={"text": f"great value number {i}"}) for i in range(16)]
            bad = [client.post("/api/v1/analyze", content=SURROGATE_BODY, headers={"content-type": "application/json"})
                   for _ in range(16)]
            return await asyncio.gather(*good, *bad)

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 16 + [400] * 16


def test_a_text_the_model_fails_on_fails_only_its_own_request(tfidf_model_dir):
    model = sentitune.load(tfidf_model_dir)
    real_logits = model.logits

    def logits(texts):  # the real model, slowed so requests queue into one batch, failing on one text
        time.sleep(0.05)
        if any("poison" in t for t in texts):
            raise RuntimeError("the model cannot score this text")
        return real_logits(texts)

    model.logits = logits

    async def burst(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            texts = [f"lovely review {i}" for i in range(12)]
            texts.insert(6, "poison pill")
            return await asyncio.gather(*(client.post("/api/v1/analyze", json={"text": t}) for t in texts))

    # not about shedding: at 0.05 s a call, 13 queued texts can look like more than MAX_QUEUE_WAIT_S of work
    with live_server(ServeConfig(auth_enabled=False, cache_size=0, max_queue_wait_s=60), model=model) as url:
        responses = asyncio.run(burst(url))
        batches = httpx.get(f"{url}/metrics").text
    statuses = [r.status_code for r in responses]
    assert statuses[6] == 500 and statuses[:6] + statuses[7:] == [200] * 12
    count = float(next(x for x in batches.splitlines() if x.startswith("sentitune_model_batch_size_count ")).split()[1])
    assert count < 13, "the requests were never batched, so this test tested nothing"


# ------------------------------------------------------------------------------------ 2c schema
def test_openapi_states_the_limits_the_server_enforces(tfidf_api):
    schemas = httpx.get(f"{tfidf_api}/openapi.json").json()["components"]["schemas"]
    text = schemas["AnalyzeRequest"]["properties"]["text"]
    assert (text["minLength"], text["maxLength"]) == (1, 5000) and "pattern" in text
    texts = schemas["BatchRequest"]["properties"]["texts"]
    assert (texts["minItems"], texts["maxItems"]) == (1, 64) and texts["items"]["maxLength"] == 5000
    legacy = schemas["LegacyRequest"]
    assert legacy["additionalProperties"] is False and legacy["properties"]["context"]["maxLength"] == 5000
    assert_error(post(tfidf_api, "/analyze-sentiment", {"text": "good", "extra": 1}), 400, "extra")
    assert_error(post(tfidf_api, "/analyze-sentiment", {"text": "good", "context": "c" * 5001}), 400, "limit is 5000")


# ------------------------------------------------------------------------------ 2f backpressure
def metric(url: str, name: str) -> float:
    return float(re.search(rf"^{name} (\S+)$", httpx.get(f"{url}/metrics").text, re.M)[1])


def test_full_queue_answers_503_with_retry_after_at_once(tfidf_model_dir):
    model = sentitune.load(tfidf_model_dir)
    real_logits, entered, release = model.logits, threading.Event(), threading.Event()

    def held_logits(texts):  # the real model, held until the test lets it go: the queue fills behind it
        entered.set()
        assert release.wait(30)
        return real_logits(texts)

    model.logits = held_logits
    # one model thread, so what comes after the held call waits in the queue
    config = ServeConfig(auth_enabled=False, cache_size=0, max_queue=2, batch_size=1, model_workers=1)
    analyze = lambda text: post(url, "/api/v1/analyze", {"text": text}, key=None)  # noqa: E731
    with live_server(config, model=model) as url, ThreadPoolExecutor(4) as pool:
        try:
            admitted = [pool.submit(analyze, "nice one")]
            assert entered.wait(30)  # that text is in the model; the queue is empty
            admitted.append(pool.submit(analyze, "nice two"))
            deadline = time.monotonic() + 30
            while metric(url, "sentitune_queue_texts") < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            # one text waits: a batch of two would make three, over MAX_QUEUE (refused by the queue itself)
            late = post(url, "/api/v1/analyze/batch", {"texts": ["a", "b"]}, key=None)
            assert_error(late, 503, "1 texts are waiting for the model (limit 2)")
            admitted.append(pool.submit(analyze, "nice three"))
            while metric(url, "sentitune_queue_texts") < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            full_since = time.monotonic()  # the third text has been waiting at least since then
            # the queue is full: refused before routing, auth or body parsing (invalid JSON is not read),
            # while the model has not answered anything yet
            early = [analyze("one more"), raw_post(url, "/api/v1/analyze", b"{not json", key=None)]
            for r in [late, *early]:
                assert r.json()["error"]["type"] == "overloaded" and r.headers["Retry-After"] == "1"
            for r in early:
                assert_error(r, 503, "2 texts are waiting for the model (limit 2)")
            assert httpx.get(f"{url}/api/v1/health").status_code == 200  # probes are never shed
            assert not any(f.done() for f in admitted)
            assert metric(url, "sentitune_overloaded_total") == 3
        finally:  # the model is let go even when an assertion failed, so the server can stop
            release.set()
            held = time.monotonic() - full_since
        assert [f.result().status_code for f in admitted] == [200, 200, 200]
        # shedding is not a failure state: once the queue has drained, the next request is scored
        assert analyze("fine again").status_code == 200
        # each scored text's queue wait and each model call's time are in the metrics; the third text
        # alone waited longer than the model was held after the queue filled
        assert metric(url, "sentitune_queue_wait_seconds_count") == 4 == metric(url, "sentitune_model_call_seconds_count")
        assert held <= metric(url, "sentitune_queue_wait_seconds_sum") < 4 * 30


def test_work_past_max_queue_wait_s_is_shed_after_the_hold_with_a_timed_retry_after(tfidf_model_dir):
    model = sentitune.load(tfidf_model_dir)
    real_logits, entered, release = model.logits, threading.Event(), threading.Event()
    release.set()

    def slow_logits(texts):  # the real model at 0.6 s a call, held while the test needs a call in flight
        entered.set()
        time.sleep(0.6)
        assert release.wait(30)
        return real_logits(texts)

    model.logits = slow_logits
    config = ServeConfig(auth_enabled=False, cache_size=0, batch_size=1, max_queue_wait_s=1.0, shed_hold_s=0.5,
                         model_workers=1)  # one model thread: the queue fills behind the call in flight
    app = create_app(config, model)
    cost = app.state.service.batcher.cost
    analyze = lambda text: post(url, "/api/v1/analyze", {"text": text}, key=None)  # noqa: E731
    with live_server(app=app) as url, ThreadPoolExecutor(2) as pool:
        try:
            assert analyze("a first one, timed").status_code == 200
            per_text = cost.per_text  # about 0.6 s
            release.clear()
            entered.clear()
            admitted = [pool.submit(analyze, "in the model")]
            assert entered.wait(30)
            admitted.append(pool.submit(analyze, "waiting"))  # the queue was empty: admitted
            deadline = time.monotonic() + 30
            while metric(url, "sentitune_queue_texts") < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert metric(url, "sentitune_queue_expected_seconds") == pytest.approx(2 * per_text)
            # one text waits and one is scored: a third would be answered in about 1.8 s, past 1 s
            start = time.monotonic()
            shed = analyze("one too many")
            held = time.monotonic() - start
            assert not any(f.done() for f in admitted)
        finally:  # the model is let go even when an assertion failed, so the server can stop
            release.set()
        assert_error(shed, 503, "(limit 1 s)")
        assert shed.json()["error"]["type"] == "overloaded"
        assert shed.headers["Retry-After"] == str(math.ceil(3 * per_text)) != "1"  # when the queue has drained
        assert held >= 0.8 * config.shed_hold_s  # the refusal is held, so a client retrying at once slows down
        assert [f.result().status_code for f in admitted] == [200, 200]
        assert metric(url, "sentitune_overloaded_total") == 1


# ------------------------------------------------------------------------------ 2d rate limits
def test_spoofed_forwarded_for_does_not_escape_the_limit(tfidf_model_dir):
    config = ServeConfig(model_path=str(tfidf_model_dir), auth_enabled=False, rate_limit_per_hour=3)
    with live_server(config) as url:
        statuses = [
            httpx.post(f"{url}/api/v1/analyze", json={"text": "good"}, headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
            for i in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


def test_forwarded_for_is_honoured_from_a_trusted_proxy(tfidf_model_dir):
    config = ServeConfig(
        model_path=str(tfidf_model_dir), auth_enabled=False, rate_limit_per_hour=1, trusted_proxies=["127.0.0.0/8"]
    )
    with live_server(config) as url:
        send = lambda ip: httpx.post(f"{url}/api/v1/analyze", json={"text": "good"}, headers={"X-Forwarded-For": ip})  # noqa: E731
        assert [send(ip).status_code for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.1")] == [200, 200, 429]


def test_a_batch_costs_one_unit_per_text(tfidf_model_dir):
    config = ServeConfig(model_path=str(tfidf_model_dir), api_keys=[KEY], rate_limit_per_hour=5)
    with live_server(config) as url:
        assert post(url, "/api/v1/analyze/batch", {"texts": ["good", "bad", "fine", "great"]}).status_code == 200
        assert_error(post(url, "/api/v1/analyze/batch", {"texts": ["good", "bad"]}), 429, "one per text")
        assert post(url, "/api/v1/analyze", {"text": "good"}).status_code == 200
        assert_error(post(url, "/api/v1/analyze", {"text": "good"}), 429, "5 requests/hour")


def test_repeated_failed_auth_is_throttled_per_address(tfidf_model_dir):
    config = ServeConfig(model_path=str(tfidf_model_dir), api_keys=[KEY], auth_failures_per_minute=3)
    with live_server(config) as url:
        for i in range(3):
            r = post(url, "/api/v1/analyze", {"text": "good"}, key=f"guess-{i}", headers={"X-Forwarded-For": f"10.1.0.{i}"})
            assert_error(r, 401)
        r = post(url, "/api/v1/analyze", {"text": "good"}, key="guess-3")
        assert_error(r, 429, "failed authentications")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        # while throttled even the right key is refused: a guess that hits would otherwise show
        assert_error(post(url, "/api/v1/analyze", {"text": "good"}), 429)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_workers_share_the_limit_through_redis(tfidf_model_dir, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        config = ServeConfig(
            model_path=str(tfidf_model_dir), api_keys=[KEY], rate_limit_per_hour=3, key_id_secret="shared",
            redis_url=f"redis://127.0.0.1:{port}/0",
        )
        with live_server(config) as a, live_server(config) as b:  # two workers, one limit
            statuses = [post(url, "/api/v1/analyze", {"text": "good"}).status_code for url in (a, b, a, b)]
        assert statuses == [200, 200, 200, 429]
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------------------------ 2b headers
def header_server_config(tfidf_model_dir, **kw) -> ServeConfig:
    return ServeConfig(model_path=str(tfidf_model_dir), auth_enabled=False, max_header_bytes=4096, max_headers=20, **kw)


def test_oversized_or_too_many_headers_are_431(tfidf_model_dir):
    with live_server(header_server_config(tfidf_model_dir)) as url:
        analyze = lambda headers: httpx.post(f"{url}/api/v1/analyze", json={"text": "good"}, headers=headers)  # noqa: E731
        assert analyze({"X-Pad": "p" * 3000}).status_code == 200
        r = analyze({"X-Pad": "p" * 5000})
        assert r.status_code == 431 and r.json()["error"]["code"] == 431
        assert analyze({f"X-H{i}": "1" for i in range(12)}).status_code == 200
        assert analyze({f"X-H{i}": "1" for i in range(30)}).status_code == 431
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as s:
            # a header that has not ended yet, already over the limit: refused without waiting for the rest
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 5000)
            assert read_until_closed(s).startswith(b"HTTP/1.1 431 ")


def test_slow_or_idle_connections_are_closed(tfidf_model_dir):
    config = header_server_config(tfidf_model_dir, header_timeout_s=0.5, timeout_keep_alive_s=0.5)
    with live_server(config) as url:
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        with socket.create_connection(address, timeout=5) as idle, socket.create_connection(address, timeout=5) as slow:
            slow.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            start = time.monotonic()
            assert read_until_closed(idle) == b"" and read_until_closed(slow) == b""  # closed by the server
            assert time.monotonic() - start < 4
        with socket.create_connection(address, timeout=5) as kept:
            kept.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            start = time.monotonic()
            assert read_until_closed(kept).startswith(b"HTTP/1.1 200 ")  # kept alive only timeout_keep_alive_s
            assert time.monotonic() - start < 4


def test_concurrent_connection_cap_answers_503(tfidf_model_dir):
    with live_server(header_server_config(tfidf_model_dir, limit_concurrency=3)) as url:
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        held = [socket.create_connection(address, timeout=5) for _ in range(3)]
        time.sleep(0.2)
        try:
            r = httpx.get(f"{url}/api/v1/health")
            # the app's own overload answer (JSON error, Retry-After), not uvicorn's plain text
            assert_error(r, 503, "too many concurrent connections")
            assert r.json()["error"]["type"] == "overloaded" and r.headers["Retry-After"] == "1"
            assert r.headers["Connection"] == "close"
        finally:
            for s in held:
                s.close()
        time.sleep(0.2)
        assert httpx.get(f"{url}/api/v1/health").status_code == 200


def test_refusals_at_the_cap_are_logged_once_per_interval_with_their_count(tfidf_model_dir, caplog, monkeypatch):
    from sentitune.serving.server import RefusalLogThrottle

    monkeypatch.setattr(RefusalLogThrottle, "interval_s", 1.0)
    with live_server(header_server_config(tfidf_model_dir, limit_concurrency=3)) as url:
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        held = [socket.create_connection(address, timeout=5) for _ in range(3)]
        time.sleep(0.2)
        try:
            with caplog.at_level("WARNING", logger="uvicorn.error"):
                refused = lambda: httpx.get(f"{url}/api/v1/health").status_code  # noqa: E731
                assert [refused() for _ in range(6)] == [503] * 6
                time.sleep(1.1)
                assert refused() == 503
        finally:
            for s in held:
                s.close()
    lines = [r for r in caplog.records if r.name == "uvicorn.error" and "concurrency limit" in r.getMessage()]
    assert [r.refused for r in lines] == [1, 6]  # the first at once; then the 5 held back and the one after 1 s
    assert "6 requests refused with 503 since the previous such line" in lines[1].getMessage()


# ---------------------------------------------------------------------------------- 1 structure
def test_serving_functions_are_short():
    long = []
    for path in Path(sentitune.serving.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long


def test_dependency_overrides_reach_the_guards(tfidf_model_dir):
    app = create_app(ServeConfig(model_path=str(tfidf_model_dir), api_keys=[KEY]))
    app.dependency_overrides[require_key] = lambda: "test-client"
    with live_server(app=app) as url:
        assert post(url, "/api/v1/analyze", {"text": "good"}, key=None).status_code == 200
