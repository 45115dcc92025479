"""LoRA or full fine-tuning for the default encoder? Same data, same schedule, measured.

    python benchmarks/lora_vs_full.py [--work runs/default] [--train-rows 6000]

Trains all-MiniLM-L6-v2 as a sequence classifier both ways on the same seeded subset of the
default model's training split, one epoch each, and reports held-out accuracy (all sources and
SST-2-style short sentences), training time and artifact size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentitune  # noqa: E402
from benchmarks.default_model import accuracy_by_source  # noqa: E402
from benchmarks.results import markdown_table, write_section  # noqa: E402
from sentitune.config import LoraConfig, TrainConfig  # noqa: E402
from sentitune.data import read_jsonl  # noqa: E402
from sentitune.training import run_training  # noqa: E402

SHORT = "SST-2-style short sentences (sst2 + rotten_tomatoes)"


def size_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.iterdir() if f.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("runs/default"))
    ap.add_argument("--train-rows", type=int, default=6000)
    args = ap.parse_args()
    data = args.work / "data"
    test = read_jsonl(data / "test.jsonl")
    rows = []
    for name, lora, lr in (("LoRA r=16", True, 4e-4), ("full", False, 5e-5)):
        out = args.work / f"compare-{'lora' if lora else 'full'}"
        cfg = TrainConfig(
            train_file=str(data / "train.jsonl"), val_file=str(data / "val.jsonl"), output_dir=str(out),
            max_train_samples=args.train_rows, num_epochs=1, learning_rate=lr, warmup_ratio=0.06, batch_size=32,
            max_length=128, eval_strategy="no", lora=LoraConfig(enabled=lora),
        )
        start = time.time()
        run_training(cfg)
        seconds = time.time() - start
        acc = accuracy_by_source(sentitune.load(out), test)
        rows.append([name, f"{lr:g}", acc["all sources"][1], acc[SHORT][1], round(seconds), round(size_mb(out), 1)])
    table = markdown_table(["fine-tuning", "lr", "accuracy (all)", "short sentences", "train s", "artifact MB"], rows)
    print(table)
    write_section("lora-vs-full", f"LoRA vs full fine-tuning of all-MiniLM-L6-v2 ({args.train_rows} rows, 1 epoch)", table)


if __name__ == "__main__":
    main()
