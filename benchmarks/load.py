"""Load test of the API with `wrk`: requests/s and latency at 1 to 1,024 connections, micro-batching on/off.

    apt-get install -y wrk
    python benchmarks/load.py [--model-path D] [--seconds 10] [--connections 1 8 64 256 1024]

Starts `sentitune serve` on a free loopback port (once per micro-batching variant) and drives it
with wrk, whose Lua script sends distinct short texts as single-text /api/v1/analyze requests.
503 + Retry-After under overload is the server shedding load (counted, not an error); an error is a
timeout, a socket error or any other non-200. wrk shares the machine's cores with the server, so
the figures are a floor for a dedicated server. One results section per CPU kind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import markdown_table, write_section  # noqa: E402
from sentitune.data import read_jsonl, sample_path  # noqa: E402
from sentitune.methods.hardware import cpu_kind, detect  # noqa: E402

KEY = "load-test-key"
SHORT_SOURCES = ("sst2/train", "rotten_tomatoes/train", "sentiment140/train_sample", "yelp/shen2017_sentences_dev")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_path: str | None, micro_batching: bool, max_wait_ms: float = 0.0) -> tuple[subprocess.Popen, str]:
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


# wrk's Lua: a distinct text per request (cycling through the list), and the statuses counted
LUA = """
bodies = {%s}
counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%s"
request = function()
  counter = counter + 1
  return wrk.format(nil, "/api/v1/analyze", nil, bodies[(counter %% #bodies) + 1])
end
statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(95)))
  io.write(string.format("P99 %%d\\n", latency:percentile(99)))
end
"""


def lua_string(text: str) -> str:
    # decimal byte escapes: valid in every Lua, whatever the text holds
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in text.encode()) + '"'


def write_script(texts: list[str], path: Path) -> Path:
    bodies = ",\n".join(lua_string(json.dumps({"text": t})) for t in texts)
    path.write_text(LUA % (bodies, KEY))
    return path


def drive(url: str, script: Path, connections: int, seconds: float) -> dict:
    """wrk with ``connections`` connections (threads: at most 2, the load generator's share)."""
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    n, connect, read, write, timeout, p50, p95 = map(int, re.search(r"RESULT (.+)", out)[1].split())
    p99 = int(re.search(r"P99 (\d+)", out)[1])
    non2xx = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    return {
        "requests/s": rate, "p50 ms": p50 / 1000, "p95 ms": p95 / 1000, "p99 ms": p99 / 1000,
        "requests": n, "non-200": non2xx, "socket errors": connect + read + write, "timeouts": timeout,
    }


def status_503s(url: str) -> float:
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return sum(float(x.split()[1]) for x in lines if x.startswith("sentitune_overloaded_total "))


def batch_counters(url: str) -> tuple[float, float]:
    """(model calls, texts scored) so far, from the server's Prometheus metrics."""
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    get = lambda name: float(next(x for x in lines if x.startswith(name + " ")).split()[1])  # noqa: E731
    return get("sentitune_model_batch_size_count"), get("sentitune_model_batch_size_sum")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-path", default=None, help="default: the shipped model")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, nargs="+", default=[1, 8, 64, 256, 1024])
    ap.add_argument("--name", default="", help="added to the section name, e.g. tfidf")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    # the typical request: a sentence, tweet or short review (long reviews are model-bound, see speed.py)
    texts = [r["text"] for r in read_jsonl(sample_path("test")) if r["source"] in SHORT_SOURCES]
    random.Random(0).shuffle(texts)
    script = write_script(texts, Path(tempfile.mkdtemp()) / "analyze.lua")

    rows = []
    for name, micro in [("on (default)", True), ("off", False)]:
        proc, url = start_server(args.model_path, micro)
        try:
            path = httpx.get(f"{url}/api/v1/health").json()["model"].get("path")
            drive(url, script, 4, 2)  # warm-up
            for connections in args.connections:
                calls0, texts0 = batch_counters(url)
                shed0 = status_503s(url)
                r = drive(url, script, connections, args.seconds)
                calls1, texts1 = batch_counters(url)
                # the server also counts 503s sent after wrk stopped reading at its deadline
                shed = status_503s(url) - shed0
                rows.append([
                    name, connections, r["requests/s"], r["p50 ms"], r["p95 ms"], r["p99 ms"], r["requests"],
                    r["non-200"], int(shed), r["socket errors"], r["timeouts"],
                    (texts1 - texts0) / max(calls1 - calls0, 1),
                ])
                print(rows[-1], flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    table = markdown_table(
        ["micro-batching", "connections", "requests/s", "p50 ms", "p95 ms", "p99 ms", "requests", "non-200 (wrk)",
         "503 shed (server count)", "socket errors", "timeouts", "texts per model call"],
        rows,
    )
    summary = (
        f"Model path: {path}. `wrk` on loopback (at most 2 threads), single-text `/api/v1/analyze` requests cycling "
        f"through {len(texts)} distinct short English texts from the bundled test split, {args.seconds:.0f} s per row; "
        "wrk and the server share the machine's cores. 503 is load shedding (with Retry-After) once MAX_QUEUE texts wait."
    )
    print(f"\n{table}\n\n{summary}")
    kind = cpu_kind(detect())
    suffix = f"-{args.name}" if args.name else ""
    write_section(f"load-{kind}{suffix}", f"API load test with wrk ({detect().cpu}{', ' + args.name if args.name else ''})",
                  f"{table}\n\n{summary}")


if __name__ == "__main__":
    main()
