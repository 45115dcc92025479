"""Where a request's model time goes: one forward pass of the default English model, by tokens per
text, texts per call and torch threads, against the CPU's peak (issue 16).

    python benchmarks/forward_cost.py [--repeats 15] [--no-write]

Synthetic texts of exactly L tokens (no padding), the path `sentitune.load()` chooses (bf16 on a CPU
with AVX512-BF16 or AMX), the median of ``--repeats`` calls, each through the model's eager forward
(transformers' Python between the kernels) and through the frozen TorchScript graph the classifier
runs on a CPU (methods/hf.py `inference_forward`). Two figures explain the server's latency
and throughput (benchmarks/load.py): the fixed cost of one call (the intercept of one text's time
over its tokens: Python and kernel launches, paid whatever the text), and how close a full
micro-batch (32 texts) runs to the CPU's peak arithmetic. One results section per CPU kind.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentitune  # noqa: E402
from benchmarks.results import cpu_title, markdown_table, write_section  # noqa: E402
from benchmarks.speed import forward_flops, peak_flops  # noqa: E402
from sentitune.methods.hardware import cpu_kind, detect, weights_precision  # noqa: E402

TOKENS = (16, 32, 64)
BATCHES = (1, 8, 32)


def median_seconds(forward, model, tokens: int, batch: int, repeats: int) -> float:
    ids = torch.full((batch, tokens), 2000)  # a common word piece; [CLS] ... [SEP] as the tokenizer makes them
    ids[:, 0], ids[:, -1] = model.tokenizer.cls_token_id, model.tokenizer.sep_token_id
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    times = []
    with torch.inference_mode():
        forward(inputs)  # warm-up: oneDNN builds its kernels for a new shape once
        for _ in range(repeats):
            start = time.perf_counter()
            forward(inputs)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    model = sentitune.load(sentitune.ENGLISH_MODEL_PATH)
    arithmetic = weights_precision(model)
    peak, unit = peak_flops("bf16" if arithmetic == "bf16" else "fp32")
    cores = torch.get_num_threads()
    graph, runs = model.forward_runner
    forwards = {"eager": lambda inputs: model.model(**inputs).logits, runs: graph}
    rows, single = [], {}
    for threads in sorted({1, cores}):
        torch.set_num_threads(threads)
        for tokens in TOKENS:
            for batch in BATCHES:
                flops = float(forward_flops(model.model, [tokens])[0]) * batch
                for name, forward in forwards.items():  # interleaved: the machine's drift hits both alike
                    seconds = median_seconds(forward, model, tokens, batch, args.repeats)
                    rows.append([threads, tokens, batch, name, seconds * 1000, batch / seconds, flops / seconds / 1e9,
                                 f"{flops / seconds / (peak * threads / cores):.0%}"])
                    if batch == 1:
                        single.setdefault((name, threads), []).append((tokens, seconds * 1000))
                    print(rows[-1], flush=True)
    fixed = {k: np.polyfit(*zip(*points), 1) for k, points in single.items()}  # ms = slope x tokens + fixed
    table = markdown_table(["torch threads", "tokens per text", "texts per call", "forward", "ms per call", "texts/s",
                            "GFLOP/s", "of peak (those threads)"], rows)
    lines = [f"- {name}, {t} thread{'s' * (t > 1)}: one text costs {b:.1f} ms + {a * 1000:.0f} µs per token"
             for (name, t), (a, b) in fixed.items()]
    body = (f"Path: {model.inference_path}. Peak assumed: {peak / 1e12:.2f} TOP/s ({unit}).\n\n{table}\n\n"
            "Fixed cost of one call (a line through one text's ms over its tokens):\n" + "\n".join(lines) +
            "\n\nThe fixed cost is what the TorchScript graph removes (transformers' Python between the kernels); "
            "a full micro-batch runs near the arithmetic peak either way, so the server's requests/s at 64 connections "
            "is bounded by the model's FLOPs and one text by the fixed cost that remains (reading the weights).")
    print(body)
    if not args.no_write:
        write_section(f"forward-cost-{cpu_kind(detect())}", f"One forward pass: fixed cost and share of peak ({cpu_title()})",
                      body)


if __name__ == "__main__":
    main()
