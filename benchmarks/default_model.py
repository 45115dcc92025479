"""The shipped default model against the frozen-encoder + logistic-regression baseline, per source.

    python benchmarks/default_model.py [--work runs/default] [--shared ../shared/data]

Uses the held-out per-source test splits written by scripts/train_default_model.py (rebuilt if
absent), which the default model never saw. The baseline is sentitune's `head` method (frozen
all-MiniLM-L6-v2 mean-pooled embeddings + logistic regression) trained on the same training split.
Bars (issue 2): >= 0.88 on the SST-2-style short-sentence domain, and better than the baseline on
every source.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentitune  # noqa: E402
from benchmarks.results import markdown_table, write_section  # noqa: E402
from sentitune.config import TrainConfig  # noqa: E402
from sentitune.data import read_jsonl  # noqa: E402
from sentitune.training import run_training  # noqa: E402

SHORT_SENTENCE_SOURCES = ("sst2/train", "rotten_tomatoes/train")


def accuracy_by_source(model, rows: list[dict]) -> dict[str, tuple[int, float]]:
    pred = model.predict_proba([r["text"] for r in rows]).argmax(axis=1)
    hits: dict[str, list[bool]] = defaultdict(list)
    for row, p in zip(rows, pred):
        hits[row["source"]].append(int(p) == row["label"])
        if row["source"] in SHORT_SENTENCE_SOURCES:
            hits["SST-2-style short sentences (sst2 + rotten_tomatoes)"].append(int(p) == row["label"])
        hits["all sources"].append(int(p) == row["label"])
    return {src: (len(v), float(np.mean(v))) for src, v in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("runs/default"))
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    data = args.work / "data"
    if not (data / "test.jsonl").exists():
        from scripts.train_default_model import build_data

        build_data(args.shared, data)
    test = read_jsonl(data / "test.jsonl")

    default = sentitune.load(sentitune.ENGLISH_MODEL_PATH)
    baseline_dir = args.work / "baseline-head"
    if not (baseline_dir / "sentitune.json").exists():
        t = time.time()
        run_training(TrainConfig(method="head", model="all-minilm-l6-v2", train_file=str(data / "train.jsonl"),
                                 val_file=str(data / "val.jsonl"), output_dir=str(baseline_dir), max_length=128))
        print(f"baseline trained in {time.time() - t:.0f}s")
    baseline = sentitune.load(baseline_dir)

    ours, theirs = accuracy_by_source(default, test), accuracy_by_source(baseline, test)
    rows, all_better = [], True
    for src in sorted(ours, key=lambda s: (s.startswith(("SST", "all")), s)):
        n, a = ours[src]
        b = theirs[src][1]
        all_better &= a > b or src.startswith(("SST", "all"))
        rows.append([src, n, a, b, f"{100 * (a - b):+.1f}"])
    table = markdown_table(["test split", "rows", "default model", "frozen MiniLM + LR", "points"], rows)
    short = ours["SST-2-style short sentences (sst2 + rotten_tomatoes)"][1]
    verdict = (
        f"Short-sentence accuracy {short:.4f} (bar 0.88: {'met' if short >= 0.88 else 'NOT met'}); "
        f"better than the baseline on every source: {'yes' if all_better else 'NO'}."
    )
    print(table)
    print(verdict)
    write_section("default-model", "Default model vs frozen-encoder baseline (issue 2)", f"{table}\n\n{verdict}")


if __name__ == "__main__":
    main()
