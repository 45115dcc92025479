"""Load test of the API: requests/s and latency at 1, 8 and 64 concurrent clients, micro-batching on/off.

    python benchmarks/load.py [--model-path D] [--seconds 15] [--clients 1 8 64]

Starts `sentitune serve` on a free loopback port (once with micro-batching, once without), drives
it with an async httpx client sending short texts (each client sends single-text /api/v1/analyze requests back to back
for a fixed time), and writes the table to benchmarks/RESULTS.md. The client shares the machine's
cores with the server, so the figures are a floor for a dedicated server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import markdown_table, write_section  # noqa: E402
from sentitune.data import read_jsonl, sample_path  # noqa: E402

KEY = "load-test-key"
SHORT_SOURCES = ("sst2/train", "rotten_tomatoes/train", "sentiment140/train_sample", "yelp/shen2017_sentences_dev")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_path: str | None, micro_batching: bool, max_wait_ms: float = 0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ, "API_KEY": KEY, "RATE_LIMIT_PER_HOUR": "100000000", "LOG_LEVEL": "WARNING",
        "MICRO_BATCHING": "1" if micro_batching else "0", "MAX_WAIT_MS": str(max_wait_ms),
        "CACHE_SIZE": "0",  # the texts repeat: measure the model path, not the cache
    }
    cmd = [sys.executable, "-m", "sentitune", "serve", "--port", str(port)]
    if model_path:
        cmd += ["--model-path", model_path]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not become healthy in 180 s")


async def drive(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    failures = 0
    stop = time.monotonic() + seconds

    async def client(worker: int, http: httpx.AsyncClient) -> None:
        nonlocal failures
        i = worker
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                r = await http.post("/api/v1/analyze", json={"text": texts[i % len(texts)]})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start) if ok else None
            failures += not ok
            i += clients

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=60, limits=limits) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(w, http) for w in range(clients)))
        elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {
        "requests/s": len(latencies) / elapsed,
        "p50 ms": float(np.percentile(ms, 50)), "p95 ms": float(np.percentile(ms, 95)),
        "p99 ms": float(np.percentile(ms, 99)), "requests": len(latencies), "failed": failures,
    }


def batch_counters(url: str) -> tuple[float, float]:
    """(model calls, texts scored) so far, from the server's Prometheus metrics."""
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    get = lambda name: float(next(x for x in lines if x.startswith(name + " ")).split()[1])  # noqa: E731
    return get("sentitune_model_batch_size_count"), get("sentitune_model_batch_size_sum")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-path", default=None, help="default: the shipped model")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    args = ap.parse_args()
    # the typical request: a sentence, tweet or short review (long reviews are model-bound, see speed.py)
    texts = [r["text"] for r in read_jsonl(sample_path("test")) if r["source"] in SHORT_SOURCES]
    random.Random(0).shuffle(texts)

    rows, results = [], {}
    # micro-batching without waiting (the default: a batch is whatever queued while the model was
    # busy), waiting up to 5 ms for company, and off (one model call per request)
    variants = [("on, wait 0 ms (default)", True, 0.0), ("on, wait 5 ms", True, 5.0), ("off", False, 0.0)]
    for name, micro, wait_ms in variants:
        proc, url = start_server(args.model_path, micro, wait_ms)
        try:
            asyncio.run(drive(url, texts, 4, 2.0))  # warm-up
            for clients in args.clients:
                calls0, texts0 = batch_counters(url)
                r = asyncio.run(drive(url, texts, clients, args.seconds))
                calls1, texts1 = batch_counters(url)
                results[(name, clients)] = r
                rows.append([
                    name, clients, r["requests/s"], r["p50 ms"], r["p95 ms"], r["p99 ms"],
                    r["requests"], r["failed"], (texts1 - texts0) / max(calls1 - calls0, 1),
                ])
                print(rows[-1], flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    table = markdown_table(
        ["micro-batching", "clients", "requests/s", "p50 ms", "p95 ms", "p99 ms", "requests", "failed", "texts per model call"],
        rows,
    )
    top = max(args.clients)
    ratio = results[("on, wait 0 ms (default)", top)]["requests/s"] / results[("off", top)]["requests/s"]
    failed = sum(r["failed"] for r in results.values())
    summary = (
        f"At {top} clients micro-batching serves {ratio:.2f}x the requests/s of one model call per request; "
        "not waiting keeps single-client latency at the unbatched level, waiting 5 ms only adds latency. "
        f"Failed requests in all runs: {failed}. Single-text `/api/v1/analyze` requests, {len(texts)} short English texts "
        f"(sentences, tweets) from the bundled test split, {args.seconds:.0f} s per row, client and server on the same machine."
    )
    print(f"\n{table}\n\n{summary}")
    write_section("load", "API load test: micro-batching on and off (issue 5)", f"{table}\n\n{summary}")


if __name__ == "__main__":
    main()
