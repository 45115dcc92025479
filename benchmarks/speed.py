"""Inference speed of the default model: plain transformers pipeline vs sentitune's paths.

    python benchmarks/speed.py [--n 2000] [--held-out runs/default/data/test.jsonl]

Same machine, same run, same texts (short SST-2 sentences and tweets; long IMDB/Amazon reviews
separately, from the default model's held-out split), same default model. Reports texts/s, single-request p50/p95 latency and accuracy.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentitune  # noqa: E402
from benchmarks.results import markdown_table, write_section  # noqa: E402
from sentitune.data import read_jsonl, sample_path  # noqa: E402
from sentitune.export.onnx import export_onnx  # noqa: E402
from sentitune.methods.tfidf import TfidfModel  # noqa: E402

SHORT = ("sst2/train", "sentiment140/train_sample")
LONG = ("imdb/train", "amazon/multi_domain_blitzer_train")


def texts_from(held_out: Path, sources: tuple[str, ...], n: int, seed: int = 0) -> list[dict]:
    """Rows of the given sources from the default model's held-out test split (never trained on)."""
    rows = [r for r in read_jsonl(held_out) if r["source"] in sources] if held_out.exists() else []
    if not rows:  # a clean clone without runs/default: the bundled sample's test split
        rows = read_jsonl(sample_path("test"))
    random.Random(seed).shuffle(rows)
    return rows[:n]


def timed(predict_batch, predict_one, texts: list[str], singles: int = 200) -> tuple[float, float, float, np.ndarray]:
    predict_one(texts[0])  # warm-up
    start = time.perf_counter()
    labels = predict_batch(texts)
    rate = len(texts) / (time.perf_counter() - start)
    lat = []
    for t in texts[:singles]:
        s = time.perf_counter()
        predict_one(t)
        lat.append((time.perf_counter() - s) * 1000)
    return rate, float(np.percentile(lat, 50)), float(np.percentile(lat, 95)), np.asarray(labels)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--held-out", type=Path, default=Path("runs/default/data/test.jsonl"),
                    help="written by scripts/train_default_model.py")
    args = ap.parse_args()
    from transformers import pipeline

    default = sentitune.load()
    tmp = Path(tempfile.mkdtemp())
    onnx32, onnx8 = sentitune.load(export_onnx(None, tmp / "fp32")), sentitune.load(export_onnx(None, tmp / "int8", "int8"))
    tfidf = TfidfModel().fit(read_jsonl(sample_path("train")))
    pipe = pipeline("text-classification", model=default.model, tokenizer=default.tokenizer, device=-1)
    pipe_label = lambda out: [int(o["label"] == "POSITIVE") for o in out]  # noqa: E731

    sections = []
    for name, sources in (("short texts", SHORT), ("long reviews", LONG)):
        rows = texts_from(args.held_out, sources, args.n)
        texts, gold = [r["text"] for r in rows], np.array([r["label"] for r in rows])
        results = {}
        for bs in (1, 8, 32, 64):
            results[f"pipeline, batch {bs}"] = timed(
                lambda t, bs=bs: pipe_label(pipe(t, batch_size=bs, truncation=True, max_length=128)),
                lambda t: pipe(t, truncation=True, max_length=128), texts if bs > 1 else texts[: max(200, args.n // 10)],
            )
        for label, model in (("sentitune PyTorch", default), ("sentitune ONNX fp32", onnx32),
                             ("sentitune ONNX int8", onnx8), ("tfidf (bundled sample)", tfidf)):
            results[label] = timed(lambda t, m=model: m.predict_proba(t).argmax(1), lambda t, m=model: m.predict_proba([t]), texts)
        best_pipe = max((v[0] for k, v in results.items() if k.startswith("pipeline") and not k.endswith(" 1")))
        table_rows = []
        reference = results["sentitune PyTorch"][3]
        for label, (rate, p50, p95, labels) in results.items():
            n = len(labels)
            acc = float((labels == gold[:n]).mean())
            agree = float((labels == reference[:n]).mean())
            table_rows.append(
                [label, f"{rate:,.0f}", f"{rate / best_pipe:.2f}x", f"{p50:.1f}", f"{p95:.1f}", f"{acc:.4f}", f"{agree:.4f}"]
            )
        table = markdown_table(
            ["path", "texts/s", "vs best pipeline", "p50 ms (1 text)", "p95 ms", "accuracy", "same label as PyTorch"],
            table_rows,
        )
        print(f"\n{name} ({len(texts)} texts)\n{table}")
        sections.append(f"### {name} ({len(texts)} texts)\n\n{table}")
    write_section("speed", "Inference speed: plain pipeline vs sentitune (issue 6)", "\n\n".join(sections))


if __name__ == "__main__":
    main()
