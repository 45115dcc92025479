"""Batch scoring throughput: the local engine against Ray Data with 1 and 2 workers.

    python benchmarks/scale.py [--rows 200000] [--model-path D] [--workers 1 2]

Builds a Parquet file of ``--rows`` texts from ../shared/data (repeated when there are fewer), scores
it with `sentitune score --engine local` and `--engine ray --workers N`, each in its own process
(peak memory: the summed RSS of its process tree, Ray's processes included), and writes rows/s to RESULTS.md.
Without --model-path the model is `tfidf` trained on the bundled sample: it scores ~10k texts/s, so
the figures measure the engines (reading, batching, writing, Ray start-up), not the model. Pass the
shipped transformer (`--model-path src/sentitune/default_model`) to measure model-bound scoring.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import markdown_table, write_section  # noqa: E402
from sentitune.data import read_jsonl, sample_path  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = ("sentiment140/train_sample", "yelp/shen2017_sentences_dev", "amazon/multi_domain_blitzer_train", "sst2/train")


def texts(rows: int) -> list[str]:
    pool: list[str] = []
    for source in SOURCES:
        path = SHARED / f"{source}.jsonl.gz"
        if path.exists():
            with gzip.open(path, "rt") as f:
                pool += [json.loads(line)["text"] for line in f]
    if not pool:  # a clean clone without ../shared: the bundled sample
        pool = [r["text"] for r in read_jsonl(sample_path("train"))]
    return [pool[i % len(pool)] for i in range(rows)]


def run(args: list[str]) -> tuple[float, float, dict]:
    """Wall seconds, peak memory of the command's whole process tree (MiB), and its printed summary."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentitune", "score", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    root, peak = psutil.Process(proc.pid), 0.0
    while proc.poll() is None:  # sample RSS of the driver and every Ray process it started
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(stderr[-2000:])
    return seconds, peak, json.loads(stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "reviews.parquet"
        frame = pd.DataFrame({"id": range(args.rows), "text": texts(args.rows)})
        frame.to_parquet(src, row_group_size=20_000)
        model = args.model_path
        if model is None:
            from sentitune.methods.tfidf import TfidfModel

            model = str(tmp / "tfidf")
            TfidfModel().fit(read_jsonl(sample_path("train"))).save(model)
        common = ["--model-path", model, "--id-column", "id"]

        results = []
        seconds, peak, summary = run([str(src), str(tmp / "local.parquet"), *common])
        results.append(["local", "-", summary["rows"], seconds, "-", summary["rows"] / seconds, peak])
        print(results[-1], flush=True)
        local_labels = pd.read_parquet(tmp / "local.parquet", columns=["label"])["label"]
        for workers in args.workers:
            out = tmp / f"ray{workers}.parquet"
            seconds, peak, summary = run([str(src), str(out), *common, "--engine", "ray", "--workers", str(workers)])
            same = bool((pd.read_parquet(out, columns=["label"])["label"] == local_labels).all())
            results.append([f"ray (same labels as local: {'yes' if same else 'NO'})", workers, summary["rows"],
                            seconds, summary["first_batch_s"], summary["rows"] / seconds, peak])
            print(results[-1], flush=True)

    table = markdown_table(
        ["engine", "workers", "rows", "wall s", "first batch after s", "rows/s (wall)", "peak memory MiB"],
        results,
    )
    local_s = results[0][3]
    growth = ", ".join(
        f"{r[1]} workers: {r[3] / local_s:.2f}x local's time, {r[3] - local_s:+.1f} s against a start-up "
        f"(first scored batch) of {r[4]:.1f} s" for r in results[1:]
    )
    note = (
        f"Model: {'tfidf trained on the bundled sample' if args.model_path is None else args.model_path}. "
        f"Ray against local, wall clock: {growth}. "
        "Peak memory is the summed RSS of the command's process tree (driver, raylet, workers), sampled every 0.2 s."
    )
    print(f"\n{table}\n\n{note}")
    # one section per model kind, so the engine-bound and the model-bound runs both stay on record
    key, kind = ("scale", "engine-bound, tfidf") if args.model_path is None else ("scale-model", "model-bound")
    write_section(key, f"Batch scoring: local engine vs Ray Data, {kind} (issue 7)", f"{table}\n\n{note}")


if __name__ == "__main__":
    main()
