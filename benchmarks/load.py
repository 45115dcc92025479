"""Load test of the API with `wrk`: requests/s and latency at 1 to 1,024 connections, micro-batching on/off.

    apt-get install -y wrk
    python benchmarks/load.py [--model-path D] [--seconds 10] [--connections 1 8 64 256 1024]
                              [--batching on off] [--env MAX_QUEUE=64 ...] [--no-write]

Starts `sentitune serve` on a free loopback port (once per micro-batching variant) and drives it
with wrk, whose Lua script sends distinct short texts as single-text /api/v1/analyze requests and
counts every response by status. 503 with Retry-After under overload is the server shedding load
(counted, not an error); an error is a 503 without Retry-After, any other non-200, a socket error
or a timeout (no answer within wrk's 10 s), each counted apart. Latency percentiles are wrk's, over
every answer (a shed request's fast 503 included); the server's own queue-wait and model-call
histograms say where a scored request's time went. wrk shares the machine's cores with the server,
so the figures are a floor for a dedicated server. One results section per CPU kind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import cpu_title, markdown_table, write_section  # noqa: E402
from sentitune.data import read_jsonl, sample_path  # noqa: E402
from sentitune.methods.hardware import cpu_kind, detect  # noqa: E402

KEY = "load-test-key"
SHORT_SOURCES = ("sst2/train", "rotten_tomatoes/train", "sentiment140/train_sample", "yelp/shen2017_sentences_dev")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_path: str | None, micro_batching: bool, settings: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ, "API_KEY": KEY, "RATE_LIMIT_PER_HOUR": "100000000", "LOG_LEVEL": "WARNING",
        "MICRO_BATCHING": "1" if micro_batching else "0",
        "CACHE_SIZE": "0",  # the texts repeat: measure the model path, not the cache
        **settings,
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
-- per thread (each has its own Lua state); done() sums them through thread:get
ok, shed, shed_bare, other = 0, 0, 0, 0
response = function(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 503 and (headers["retry-after"] or headers["Retry-After"]) then shed = shed + 1
  elseif status == 503 then shed_bare = shed_bare + 1
  else other = other + 1 end
end
threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local n = {ok = 0, shed = 0, shed_bare = 0, other = 0}
  for _, t in ipairs(threads) do
    for k, _ in pairs(n) do n[k] = n[k] + t:get(k) end
  end
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout, n.ok, n.shed,
    n.shed_bare, n.other, latency:percentile(50), latency:percentile(95), latency:percentile(99)))
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
    cpu0 = children_cpu()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    fields = map(int, re.search(r"RESULT (.+)", out)[1].split())
    n, connect, read, write, timeout, ok, shed, shed_bare, other, p50, p95, p99 = fields
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    return {
        "requests/s": rate, "p50 ms": p50 / 1000, "p95 ms": p95 / 1000, "p99 ms": p99 / 1000, "requests": n,
        "200": ok, "503 + Retry-After": shed, "503 without Retry-After": shed_bare, "other non-200": other,
        "socket errors": connect + read + write, "timeouts": timeout, "wrk cpu s": children_cpu() - cpu0,
    }


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has been waited for
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's worker processes under WORKERS > 1)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += parents.get(tree[-1], [])
    return tree


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MiB; PSS divides each shared page among the processes sharing it,
    so the PSS of a server's processes adds up to the memory they take together."""
    values = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return int(values["Rss"].split()[0]) / 1024, int(values["Pss"].split()[0]) / 1024


def server_memory(pid: int) -> str:
    """The server's processes after a load run: each one's RSS and PSS, and their total PSS."""
    found = [(p, *memory_mib(p)) for p in process_tree(pid) if Path(f"/proc/{p}/smaps_rollup").exists()]
    each = ", ".join(f"RSS {rss:,.0f} / PSS {pss:,.0f}" for _, rss, pss in found)
    return f"{len(found)} process{'es' * (len(found) > 1)} ({each} MiB), {sum(p for *_, p in found):,.0f} MiB PSS in all"


def server_metrics(url: str) -> dict[str, dict[tuple, float]]:
    """Every sample of the server's Prometheus metrics: {sample name: {labels: value}}."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def histogram_quantile(before: dict, after: dict, name: str, q: float, **labels: str) -> float:
    """The q-quantile of what a histogram observed between two scrapes (linear within a bucket), in ms."""
    want = set(labels.items())
    buckets = sorted(
        (float(dict(k)["le"]), v - before.get(name + "_bucket", {}).get(k, 0.0))
        for k, v in after.get(name + "_bucket", {}).items() if want <= set(k)
    )
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return float("nan")
    low, below = 0.0, 0.0
    for le, count in buckets:
        if count >= q * total:
            if le == float("inf"):
                return low * 1000
            return 1000 * (low + (le - low) * (q * total - below) / max(count - below, 1e-9))
        low, below = le, count
    return low * 1000


def counter_delta(before: dict, after: dict, name: str) -> float:
    return sum(after.get(name, {}).values()) - sum(before.get(name, {}).values())


HEADERS = [
    "micro-batching", "connections", "requests/s", "200/s", "p50 ms", "p95 ms", "p99 ms", "200", "503 + Retry-After",
    "503 without Retry-After", "other non-200", "socket errors", "timeouts", "texts per model call",
    "queue wait p99 ms", "model call ms", "wrk CPU share",
]


def tcp_counters() -> dict[str, int]:
    """The kernel's TCP counters (this network namespace): connections accepted, accept-queue overflows."""
    out = {}
    for name in ("/proc/net/snmp", "/proc/net/netstat"):
        lines = [line.split() for line in Path(name).read_text().splitlines()]
        for head, values in zip(lines[::2], lines[1::2]):
            out.update({head[0].rstrip(':') + k: int(v) for k, v in zip(head[1:], values[1:])})
    return out


def accept_queue_peak(port: int, stop: threading.Event, peak: list[int]) -> None:
    """Samples the listening socket's accept queue (``ss`` Recv-Q) until ``stop``: connections the
    kernel has completed that the server has not yet accepted."""
    while not stop.wait(0.1):
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout.split()
        if len(out) > 1 and out[1].isdigit():
            peak[0] = max(peak[0], int(out[1]))


def measure(url: str, pid: int, script: Path, connections: int, seconds: float) -> dict:
    """One wrk run and what the server saw meanwhile (its metrics before and after)."""
    before, server_cpu0, tcp0 = server_metrics(url), process_cpu(pid), tcp_counters()
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=accept_queue_peak, args=(int(url.rsplit(":", 1)[1]), stop, peak))
    sampler.start()
    try:
        r = drive(url, script, connections, seconds)
    finally:
        stop.set()
        sampler.join()
    after, server_cpu, tcp = server_metrics(url), process_cpu(pid) - server_cpu0, tcp_counters()
    r.update({
        "connections accepted": tcp["TcpPassiveOpens"] - tcp0["TcpPassiveOpens"],
        "listen overflows": tcp.get("TcpExtListenOverflows", 0) - tcp0.get("TcpExtListenOverflows", 0),
        "accept queue peak": peak[0],
    })
    calls = counter_delta(before, after, "sentitune_model_batch_size_count")
    r.update({
        "connections": connections, "200/s": r["200"] / seconds,
        "texts per model call": counter_delta(before, after, "sentitune_model_batch_size_sum") / max(calls, 1),
        "queue wait p99 ms": histogram_quantile(before, after, "sentitune_queue_wait_seconds", 0.99),
        "model call ms": 1000 * counter_delta(before, after, "sentitune_model_call_seconds_sum") / max(calls, 1),
        "server p99 ms": histogram_quantile(
            before, after, "sentitune_request_latency_seconds", 0.99, endpoint="/api/v1/analyze"),
        "server cpu s": server_cpu,
        # wrk's share of the CPU the two used: what the server did not get on a shared machine
        "wrk CPU share": f"{100 * r['wrk cpu s'] / max(r['wrk cpu s'] + server_cpu, 1e-9):.0f}%",
    })
    return r


def parse_settings(pairs: list[str]) -> dict[str, str]:
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise SystemExit(f"--env takes NAME=VALUE, got {bad[0]!r}")
    return dict(p.split("=", 1) for p in pairs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-path", default=None, help="default: the shipped model")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, nargs="+", default=[1, 8, 64, 256, 1024])
    ap.add_argument("--batching", nargs="+", choices=["on", "off"], default=["on", "off"], help="micro-batching variants")
    ap.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE", help="server settings, e.g. MAX_QUEUE=64")
    ap.add_argument("--name", default="", help="added to the section name, e.g. tfidf")
    ap.add_argument("--json", type=Path, help="also write every row, with the server-side figures, here")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    settings = parse_settings(args.env)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    # the typical request: a sentence, tweet or short review (long reviews are model-bound, see speed.py)
    texts = [r["text"] for r in read_jsonl(sample_path("test")) if r["source"] in SHORT_SOURCES]
    random.Random(0).shuffle(texts)
    script = write_script(texts, Path(tempfile.mkdtemp()) / "analyze.lua")

    rows, path, memory = [], None, {}
    for variant in args.batching:
        proc, url = start_server(args.model_path, variant == "on", settings)
        try:
            path = httpx.get(f"{url}/api/v1/health").json()["model"].get("path")
            drive(url, script, 4, 2)  # warm-up
            for connections in args.connections:
                r = measure(url, proc.pid, script, connections, args.seconds)
                rows.append({"micro-batching": "on (default)" if variant == "on" else "off", **r})
                print(json.dumps(rows[-1]), flush=True)
            memory[variant] = server_memory(proc.pid)
            print(f"server memory, micro-batching {variant}: {memory[variant]}", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    if args.json:
        args.json.write_text(json.dumps({"settings": settings, "model path": path, "rows": rows}, indent=1))
    table = markdown_table(HEADERS, [[r[h] for h in HEADERS] for r in rows])
    shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "the defaults"
    summary = (
        f"Model path: {path}. Server settings: {shown}. `wrk` on loopback (at most 2 threads, 10 s timeout), "
        f"single-text `/api/v1/analyze` requests cycling through {len(texts)} distinct short English texts from the "
        f"bundled test split, {args.seconds:.0f} s per row; wrk and the server share the machine's cores (wrk CPU "
        "share: wrk's part of the CPU time the two used). Latency is wrk's, over every answer, a shed request's "
        "503 included. 503 + Retry-After is load shedding (more than MAX_QUEUE texts waiting for the model, or more "
        "than LIMIT_CONCURRENCY connections); a 503 without Retry-After, other non-200, socket errors and timeouts "
        "are errors. Queue wait p99 and model call ms are the server's own histograms. Server memory after the "
        "rows (PSS shares each shared page among the processes that map it): "
        + "; ".join(f"micro-batching {v}: {m}" for v, m in memory.items()) + "."
    )
    print(f"\n{table}\n\n{summary}")
    if args.no_write:
        return
    kind = cpu_kind(detect())
    suffix = f"-{args.name}" if args.name else ""
    write_section(f"load-{kind}{suffix}", f"API load test with wrk ({cpu_title()}{', ' + args.name if args.name else ''})",
                  f"{table}\n\n{summary}")


if __name__ == "__main__":
    main()
