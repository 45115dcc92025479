"""Training speed on a CPU: the stock Trainer's plain settings against sentitune's.

    python benchmarks/train_speed.py [--models all-minilm-l6-v2 all-mpnet-base-v2] [--rows 800]
        [--train runs/default-aug/data/train.jsonl]

Same run, same rows (a random sample of the default model's training split: SST-2 phrases, tweets,
reviews), same LoRA (r=16 on every linear projection) and batch (32), max_length 128, one pass:
- `plain`: what TrainingArguments does on a CPU unless told otherwise: fp32, rows in random order,
  each batch padded to its longest row;
- `fp32, length-grouped`: sentitune's sampler (similar lengths per batch: little padding);
- `sentitune`: length-grouped plus bf16 autocast, which `mixed_precision: auto` turns on where the
  CPU has AMX or AVX512-BF16 (methods/trainer.py).
rows/s is rows over the wall time of ``Trainer.train`` (no evaluation, no checkpoint). `of peak`:
rows/s x about 2 forward passes' FLOPs per row (forward, and the backward pass to the activations;
frozen weights get no gradient under LoRA) over the CPU's peak for the arithmetic
(benchmarks/speed.py's rule). One RESULTS.md section per CPU kind.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import cpu_title, markdown_table, write_section  # noqa: E402
from benchmarks.speed import forward_flops, peak_flops  # noqa: E402
from sentitune.config import LoraConfig, TrainConfig  # noqa: E402
from sentitune.data import read_jsonl, sample_path  # noqa: E402
from sentitune.methods.classifier import SequenceClassifier  # noqa: E402
from sentitune.methods.hardware import cpu_kind, detect  # noqa: E402
from sentitune.methods.hf import add_lora, load_tokenizer  # noqa: E402
from sentitune.methods.trainer import mixed_precision, training_arguments  # noqa: E402
from sentitune.zoo import resolve_model  # noqa: E402

SETTINGS = {  # name -> overrides of sentitune's TrainingArguments
    "plain (fp32, random order)": {"bf16": False, "train_sampling_strategy": "random"},
    "fp32, length-grouped": {"bf16": False},
    "sentitune (bf16 autocast, length-grouped)": {},
}


def train_seconds(model_name: str, rows: list[dict], overrides: dict) -> tuple[float, float]:
    """(wall seconds of one pass over ``rows``, mean forward FLOPs per row)."""
    import torch
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer

    torch.manual_seed(0)
    tokenizer = load_tokenizer(resolve_model(model_name))
    base = SequenceClassifier._load_base(model_name, tokenizer, frozen=True)
    enc = tokenizer([r["text"] for r in rows], truncation=True, max_length=128)
    flops = float(np.mean(forward_flops(base, [len(ids) for ids in enc["input_ids"]])))
    model = add_lora(base, LoraConfig(enabled=True, r=16, alpha=32, dropout=0.1), "SEQ_CLS")
    data = Dataset.from_dict({**enc, "labels": [int(r["label"]) for r in rows]})
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(model=model_name, batch_size=32, num_epochs=1, learning_rate=3e-4, logging_steps=10**6)
        args = training_arguments(cfg, Path(tmp), has_eval=False)
        args = dataclasses.replace(args, save_strategy="no", disable_tqdm=True, report_to=[], **overrides)
        trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer))
        start = time.perf_counter()
        trainer.train()
        return time.perf_counter() - start, flops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["all-minilm-l6-v2", "all-mpnet-base-v2"])
    ap.add_argument("--rows", type=int, default=800)
    ap.add_argument("--train", type=Path, default=Path("runs/default-aug/data/train.jsonl"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    pool = read_jsonl(args.train) if args.train.exists() else read_jsonl(sample_path("train"))
    rows = random.Random(0).sample(pool, min(args.rows, len(pool)))
    hw = detect()
    print(f"CPU: {hw.describe()}; mixed_precision auto on this CPU -> {mixed_precision(TrainConfig(), hw)}")
    table = []
    for model_name in args.models:
        plain = None
        for name, overrides in SETTINGS.items():
            seconds, flops = train_seconds(model_name, rows, overrides)
            rate = len(rows) / seconds
            plain = plain or rate
            bf16 = overrides.get("bf16", mixed_precision(TrainConfig(), hw)["bf16"])
            peak, unit = peak_flops("bf16" if bf16 else "fp32")
            share = rate * 2 * flops / peak
            table.append([model_name, name, f"{rate:,.1f}", f"{rate / plain:.2f}x", f"{share:.0%} of {unit}"])
            print(table[-1], flush=True)
    body = markdown_table(["model", "settings", "rows/s", "vs plain", "of peak"], table)
    body += (f"\n\n{len(rows)} rows (mean {np.mean([len(r['text']) for r in rows]):.0f} characters), LoRA r=16 on every "
             "linear projection, batch 32, max_length 128, one pass through the stock Trainer; see the script's "
             "docstring for what each setting is. No gradient checkpointing (it recomputes activations: on a CPU "
             "that is time, and memory is not short).")
    print(body)
    if not args.no_write:
        write_section(f"train-speed-{cpu_kind(hw)}", f"Training speed on a CPU ({cpu_title()})", body)


if __name__ == "__main__":
    main()
