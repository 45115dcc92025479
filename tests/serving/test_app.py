"""The API through HTTP: a real uvicorn on a free loopback port, real models, every endpoint and error."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from serving_helpers import KEY, OTHER_KEY, assert_error, free_port, live_server, post, wait_healthy

import sentitune
from sentitune.config import ServeConfig
from sentitune.methods.hardware import choose_precision, detect


@pytest.fixture(scope="module")
def api():
    """The shipped default model behind auth, loaded by the server itself in the background. Not about
    shedding: on a busy 2-core machine a 48-request burst can be more model work than MAX_QUEUE_WAIT_S."""
    config = ServeConfig(api_keys=[KEY, OTHER_KEY], max_text_chars=2000, max_batch_texts=8, max_body_bytes=50_000,
                         max_queue_wait_s=60)
    with live_server(config) as url:
        yield url


def test_analyze_batch_and_legacy_endpoints(api):
    r = post(api, "/api/v1/analyze", {"text": "I absolutely love this product!"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predicted_sentiment"] == "POSITIVE" and 0.5 < body["confidence"] <= 1.0
    assert body["reasoning"] is None and body["processing_time"] > 0
    # the served confidence is the calibrated one `predict` gives, on the path the server chose
    precision = httpx.get(f"{api}/api/v1/health").json()["model"]["path"].split()[0]
    expected = sentitune.load(precision=precision).predict_records(["I absolutely love this product!"])[0]["confidence"]
    assert body["confidence"] == pytest.approx(expected, abs=1e-5)

    texts = ["Terrible service, never again.", "Wonderful film, I loved every minute.", "It broke after a day."]
    r = post(api, "/api/v1/analyze/batch", {"texts": texts})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["text"] for x in results] == texts  # order preserved
    assert [x["predicted_sentiment"] for x in results] == ["NEGATIVE", "POSITIVE", "NEGATIVE"]
    assert r.json()["total_processing_time"] > 0

    r = post(api, "/analyze-sentiment", {"text": "What a waste of money.", "context": "amazon"})
    assert r.status_code == 200 and set(r.json()) == {"text", "sentiment", "confidence"}
    assert r.json()["sentiment"] == "NEGATIVE"


def test_health_metrics_and_docs(api):
    r = httpx.get(f"{api}/api/v1/health")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok" and body["model_loaded"] is True
    assert body["model"]["method"] == "router" and "minilm" in body["model"]["name"].lower()  # the default routes by script
    # which inference path runs and why: bf16 only on a CPU computing it natively, after the agreement check
    path = body["model"]["path"]
    if "SENTITUNE_PRECISION" not in path and choose_precision(detect()).precision == "fp32":
        assert path.startswith("fp32 (")
    elif "SENTITUNE_PRECISION" not in path:
        assert path.startswith("bf16 (") and "agrees with fp32" in path or path.startswith("fp32 (bf16")
    assert body["memory_usage"]["rss_mb"] > 10 and body["uptime"] > 0 and isinstance(body["gpu_available"], bool)
    post(api, "/api/v1/analyze", {"text": "fine"}, key="wrong")
    post(api, "/api/v1/analyze", {"text": "fine, really"})
    metrics = httpx.get(f"{api}/metrics").text
    assert 'sentitune_requests_total{endpoint="/api/v1/analyze",status="200"}' in metrics
    assert 'sentitune_errors_total{status="401"}' in metrics
    assert "sentitune_model_batch_size_bucket" in metrics and "sentitune_rate_limited_total" in metrics
    assert httpx.get(f"{api}/docs").status_code == 200
    assert "/api/v1/analyze/batch" in httpx.get(f"{api}/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"text": ""}, "text is empty"),
        ({"text": "   \n\t "}, "text is empty"),
        ({"text": "x" * 2001}, "limit is 2000"),
        ({"text": 123}, "text"),
        ({"texts": ["a"]}, "text"),  # missing field / unknown field
        ("not an object", "body"),
    ],
)
def test_invalid_input_is_400(api, body, fragment):
    assert_error(post(api, "/api/v1/analyze", body), 400, fragment)


def test_invalid_batches_are_400(api):
    assert_error(post(api, "/api/v1/analyze/batch", {"texts": []}), 400, "texts is empty")
    assert_error(post(api, "/api/v1/analyze/batch", {"texts": ["ok text"] * 9}), 400, "limit is 8")
    assert_error(post(api, "/api/v1/analyze/batch", {"texts": ["good", " "]}), 400, "texts[1] is empty")
    assert_error(post(api, "/api/v1/analyze/batch", {"texts": ["good", None]}), 400, "texts.1")
    r = httpx.post(f"{api}/api/v1/analyze", content=b"{not json", headers={"X-API-Key": KEY, "content-type": "application/json"})
    assert_error(r, 400)


def test_auth_body_size_and_unknown_paths(api):
    assert_error(post(api, "/api/v1/analyze", {"text": "hello there"}, key=None), 401, "missing X-API-Key")
    assert_error(post(api, "/api/v1/analyze", {"text": "hello there"}, key=KEY + "x"), 401, "invalid API key")
    assert post(api, "/api/v1/analyze", {"text": "hello there"}, key=OTHER_KEY).status_code == 200
    assert_error(post(api, "/api/v1/analyze/batch", {"texts": ["y" * 1000] * 60}), 413, "50000 bytes")

    def chunks():  # no Content-Length: the streamed body is cut off at the limit too
        for _ in range(60):
            yield b"z" * 1000

    r = httpx.post(f"{api}/api/v1/analyze", content=chunks(), headers={"X-API-Key": KEY, "content-type": "application/json"})
    assert_error(r, 413)
    assert_error(httpx.get(f"{api}/nope"), 404)
    assert_error(httpx.get(f"{api}/api/v1/analyze"), 405)


def test_micro_batching_groups_concurrent_requests(api):
    async def burst():
        async with httpx.AsyncClient(base_url=api, headers={"X-API-Key": KEY}, timeout=60) as client:
            texts = [f"review number {i}: the food was {'great' if i % 2 else 'awful'}" for i in range(48)]
            responses = await asyncio.gather(*(client.post("/api/v1/analyze", json={"text": t}) for t in texts))
            return texts, responses

    def batches():
        lines = httpx.get(f"{api}/metrics").text.splitlines()
        get = lambda name: float(next(x for x in lines if x.startswith(name + " ")).split()[1])
        return get("sentitune_model_batch_size_count"), get("sentitune_model_batch_size_sum")

    count0, sum0 = batches()
    texts, responses = asyncio.run(burst())
    assert all(r.status_code == 200 for r in responses)
    assert [r.json()["text"] for r in responses] == texts  # each answer belongs to its request
    assert [r.json()["predicted_sentiment"] for r in responses] == ["NEGATIVE", "POSITIVE"] * 24
    count1, sum1 = batches()
    assert sum1 - sum0 == 48
    assert count1 - count0 < 48 / 2, "concurrent requests were not batched"


def test_rate_limit_per_key(tfidf_model_dir):
    config = ServeConfig(model_path=str(tfidf_model_dir), api_keys=[KEY, OTHER_KEY], rate_limit_per_hour=3)
    with live_server(config) as url:
        for _ in range(3):
            assert post(url, "/api/v1/analyze", {"text": "great stuff"}).status_code == 200
        r = post(url, "/api/v1/analyze", {"text": "great stuff"})
        assert_error(r, 429, "3 requests/hour")
        assert 1 <= int(r.headers["Retry-After"]) <= 3600  # a sliding one-hour window
        assert post(url, "/api/v1/analyze", {"text": "great stuff"}, key=OTHER_KEY).status_code == 200
        assert "sentitune_rate_limited_total 1.0" in httpx.get(f"{url}/metrics").text


def test_model_that_fails_to_load_is_503(tmp_path, tfidf_model_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sentitune.json").write_text((tfidf_model_dir / "sentitune.json").read_text())
    for f in json.loads((broken / "sentitune.json").read_text())["files"]:
        (broken / f).write_bytes(b"truncated")
    with live_server(ServeConfig(model_path=str(broken), auth_enabled=False), wait=False) as url:
        deadline = time.monotonic() + 30
        while (r := httpx.get(f"{url}/api/v1/health")).json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert r.status_code == 503 and r.json()["status"] == "error" and r.json()["detail"]
        assert_error(post(url, "/api/v1/analyze", {"text": "good"}, key=None), 503, "failed to load")


def test_unexpected_model_error_is_500_with_request_id(tfidf_model_dir):
    model = sentitune.load(tfidf_model_dir)

    def broken_logits(texts):  # a bug inside the model, not bad input
        raise RuntimeError("secret internal detail")

    model.logits = broken_logits
    with live_server(ServeConfig(auth_enabled=False), model=model) as url:
        r = post(url, "/api/v1/analyze", {"text": "good"}, key=None)
        assert_error(r, 500, "request id")
        assert "secret internal detail" not in r.text
        # the server keeps serving after the failure
        assert httpx.get(f"{url}/api/v1/health").status_code == 200


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_or_schema_violation(tfidf_model_dir, tmp_path):
    """Every check, positive and negative data: the schema says what the server accepts and rejects."""
    config = ServeConfig(
        model_path=str(tfidf_model_dir), api_keys=[KEY], rate_limit_per_hour=1_000_000,
        auth_failures_per_minute=1_000_000,  # schemathesis tries requests without the key on purpose
    )
    with live_server(config) as url:
        proc = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
                "--checks", "all", "--max-examples", "60", "--header", f"X-API-Key: {KEY}", "--seed", "1",
                "--report-dir", str(tmp_path),
            ],
            capture_output=True, text=True, timeout=600,
        )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_serve_command_logs_json_and_shuts_down_gracefully(tfidf_model_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "API_KEY": KEY, "LOG_LEVEL": "INFO"}
    config = tmp_path / "deploy.yaml"
    config.write_text("key_id_secret: log-secret-42\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentitune", "serve", "--model-path", str(tfidf_model_dir), "--port", str(port),
         "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_healthy(url, timeout=60).status_code == 200
        assert post(url, "/api/v1/analyze", {"text": "superb quality"}).json()["predicted_sentiment"] == "POSITIVE"
        assert post(url, "/api/v1/analyze", {"text": "superb quality"}, key="a-guessed-key").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status is the signal's
    assert proc.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    [ok] = [r for r in records if r.get("path") == "/api/v1/analyze" and r.get("status") == 200]
    assert KEY not in stderr  # keys are never logged
    # the client id is an HMAC under the configured secret: a log reader cannot test a guessed key
    digest = hmac.new(b"log-secret-42", KEY.encode(), hashlib.sha256).hexdigest()[:16]
    assert ok["client"] == f"key:{digest}" and hashlib.sha256(KEY.encode()).hexdigest()[:16] not in stderr
    [denied] = [r for r in records if r.get("status") == 401]
    assert denied["remote_addr"] == "127.0.0.1" and denied["client"] is None and "a-guessed-key" not in stderr


def test_serve_without_keys_is_a_one_line_error(tfidf_model_dir):
    env = {k: v for k, v in os.environ.items() if k != "API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "sentitune", "serve", "--model-path", str(tfidf_model_dir)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "no API key" in proc.stderr and "Traceback" not in proc.stderr


def test_max_length_setting_caps_the_served_models_tokens():
    from sentitune.serving.app import Service

    service = Service(ServeConfig(max_length=16, auth_enabled=False))
    service.load()
    assert service.load_error is None and service.model.meta.max_length == 16
    long_text = "great " * 200
    assert len(service.model.models["en"]._tokenize([long_text])[0]) == 16  # the default router's English route


def test_a_call_alone_on_the_primary_model_thread_gets_every_core_and_any_other_call_one(monkeypatch, tfidf_model_dir):
    import torch

    from sentitune.serving.app import Service

    monkeypatch.delenv("SENTITUNE_THREADS", raising=False)
    before, cores = torch.get_num_threads(), len(os.sched_getaffinity(0))
    service = Service(ServeConfig(model_path=str(tfidf_model_dir), auth_enabled=False))
    primary = service.batcher.primary

    def threads_after(texts: list[str]) -> int:  # torch's count is per calling thread: read it there
        service._predict(texts)
        return torch.get_num_threads()

    try:
        torch.set_num_threads(cores)
        primary.submit(torch.set_num_threads, cores).result()
        primary.submit(service.load).result()  # as the server's lifespan loads it
        assert service.batcher.workers == cores and service.threads == (cores, 1)
        assert primary.submit(threads_after, ["one text"]).result() == cores
        assert primary.submit(threads_after, ["a batch", "of two"]).result() == cores
        # another thread alone still gets one core: a second thread calling torch on several cores
        # makes torch's helper threads sleep between kernels (MicroBatcher.primary)
        assert threads_after(["one text"]) == 1
        service._calls = 1  # another model thread is scoring a batch: this call shares the cores
        assert primary.submit(threads_after, ["a batch", "of two"]).result() == 1
    finally:
        torch.set_num_threads(before)
        asyncio.run(service.batcher.stop())


def test_server_processes_share_the_cores_among_them(monkeypatch):
    import torch

    from sentitune.serving.service import model_threads

    monkeypatch.delenv("SENTITUNE_THREADS", raising=False)
    before, cores = torch.get_num_threads(), len(os.sched_getaffinity(0))
    try:
        torch.set_num_threads(cores)
        assert model_threads(workers=2, processes=1) == (cores, max(1, cores // 2))
        # WORKERS=2: each process's lone call gets half the cores, or spinning helpers of the two wait for each other
        assert model_threads(workers=2, processes=2) == (max(1, cores // 2), max(1, cores // 4))
        assert model_threads(workers=2, processes=4 * cores) == (1, 1)
    finally:
        torch.set_num_threads(before)

@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: no call gets more than its share")
def test_no_call_starts_beside_one_that_has_every_core(monkeypatch, tfidf_model_dir):
    from concurrent.futures import ThreadPoolExecutor

    from sentitune.serving.app import Service

    monkeypatch.delenv("SENTITUNE_THREADS", raising=False)
    service = Service(ServeConfig(model_path=str(tfidf_model_dir), auth_enabled=False))
    primary, other = service.batcher.primary, ThreadPoolExecutor(1)
    primary.submit(service.load).result()
    real, entered, release, started = service.model.predict_records, threading.Event(), threading.Event(), []

    def predict_records(texts):  # the real model; the call on every core holds until the test lets it go
        started.append(texts[0])
        if texts[0] == "a lovely stay":
            entered.set()
            assert release.wait(30)
        return real(texts)

    service.model.predict_records = predict_records
    try:
        wide = primary.submit(service._predict, ["a lovely stay"])
        assert entered.wait(30)
        beside = other.submit(service._predict, ["a dreadful stay"])
        time.sleep(0.5)
        assert started == ["a lovely stay"] and not beside.done()  # it waits rather than oversubscribe
        release.set()
        assert [r[0]["label"] for r in (wide.result(30), beside.result(30))] == ["POSITIVE", "NEGATIVE"]
        assert started == ["a lovely stay", "a dreadful stay"]
    finally:
        release.set()
        other.shutdown()
        asyncio.run(service.batcher.stop())
