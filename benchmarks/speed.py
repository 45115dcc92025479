"""Inference speed of the default model: plain transformers pipeline vs sentitune's paths.

    python benchmarks/speed.py [--n 2000] [--held-out runs/default/data/test.jsonl]
    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 python benchmarks/speed.py   # the same CPU with AMX switched off

Same machine, same run, same texts (short SST-2 sentences and tweets; long IMDB/Amazon reviews
separately, from the default model's held-out split, which scripts/train_default_model.py's
`build_data` writes), same English default model. Reports texts/s (best of two rounds: other work on
the machine only ever slows a round down), the share of the CPU's peak arithmetic that rate uses,
single-request p50/p95 latency, accuracy and agreement with PyTorch fp32; then label agreement of
the fast paths on the whole held-out split, and the targets. One RESULTS.md section per CPU kind
(and per oneDNN ISA cap), so a run on another CPU adds its own section.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentitune  # noqa: E402
from benchmarks.results import cpu_title, cpuinfo_number, markdown_table, write_section, zen_generation  # noqa: E402
from sentitune.config import LongTextConfig  # noqa: E402
from sentitune.data import read_jsonl, sample_path  # noqa: E402
from sentitune.export.onnx import export_onnx  # noqa: E402
from sentitune.methods.hardware import cpu_kind, detect, usable_cores  # noqa: E402
from sentitune.methods.tfidf import TfidfModel  # noqa: E402

SHORT = ("sst2/train", "sentiment140/train_sample")
LONG = ("imdb/train", "amazon/multi_domain_blitzer_train")
SINGLES = 200  # single-text requests timed per path for the latency percentiles
AUTO = "sentitune.load() (auto)"
AUTO_HEAD = "sentitune.load() (auto), first tokens only"  # long reviews: the pipeline's reading, for equal work
TRANSFORMER_PATHS = (AUTO, "sentitune PyTorch", "sentitune PyTorch bf16", "sentitune ONNX fp32", "sentitune ONNX int8")
# arithmetic the path's matrix multiplies run in: what its share of the CPU's peak is measured against
PATH_ARITHMETIC = {"sentitune PyTorch": "fp32", "sentitune PyTorch bf16": "bf16", "sentitune ONNX fp32": "fp32",
                   "sentitune ONNX int8": "int8"}
PATHS_NOTE = (
    "Paths: `sentitune.load() (auto)` is what `sentitune predict` and the server run when nothing is set (the "
    "path it chose and why is printed above the tables); `sentitune PyTorch` is fp32 (`SENTITUNE_PRECISION=fp32`); "
    "`bf16` the same with `SENTITUNE_PRECISION=bf16`; "
    "`ONNX fp32` / `int8` are `sentitune export onnx [--quantize int8]` (int8: signed per-channel MatMul weights, "
    "activations quantized at run time, the first three blocks' feed-forward MatMuls kept fp32). texts/s is the "
    "best of two interleaved rounds over the same texts; latency is one text per call. `of peak`: texts/s x the "
    "model's FLOPs per text (2 x its matrix-multiply weights x the text's real tokens, plus attention) over the "
    "CPU's peak for the path's arithmetic (cores x the clock /proc/cpuinfo reports x multiply-adds per cycle of "
    "the widest unit the flags name: AMX, AVX512-BF16 or VNNI, else AVX-512/AVX2 FMA; AMD Zen 4 (cpu family 25 with AVX-512) runs 512-bit ops at "
    "half rate, Zen 5 (26) at full rate; cores that boost above the reported clock can pass 100%). With `ONEDNN_MAX_CPU_ISA` set, oneDNN (PyTorch's bf16 kernels) is capped at that ISA, which "
    "emulates this CPU without AMX for the bf16 rows; onnxruntime's own int8 kernels are not capped. Compare the "
    "rows of one run."
)

# multiply-adds x 2 per cycle per core, by the widest unit the CPU has for that arithmetic (Intel rates;
# AMD Zen 4 (cpu family 25 with AVX-512; 25 without it is Zen 3) splits 512-bit ops into two 256-bit
# halves, so half; Zen 5's server cores, family 26, have full 512-bit datapaths: at half rate ONNX fp32
# measured 190% of "peak" on one)
PEAK_PER_CYCLE = {
    "fp32": (("avx512f", 64), ("avx2", 32)),
    "bf16": (("amx_bf16", 1024), ("avx512_bf16", 128), ("avx512f", 64), ("avx2", 32)),
    "int8": (("amx_int8", 2048), ("avx512_vnni", 256), ("avx_vnni", 128), ("avx2", 64)),
}


def isa_cap() -> str:
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "")


def peak_flops(arithmetic: str) -> tuple[float, str]:
    """The CPU's peak operations/s for ``arithmetic`` and the unit it assumes."""
    hw = detect()
    flags = set(hw.flags)
    if isa_cap() and not isa_cap().upper().startswith("AVX512_CORE_AMX") and arithmetic == "bf16":
        flags -= {"amx_bf16", "amx_int8", "amx_tile"}  # oneDNN was told not to use AMX
    unit, per_cycle = next(((f, n) for f, n in PEAK_PER_CYCLE[arithmetic] if f in flags), ("scalar", 2))
    mhz, family = cpuinfo_number("cpu MHz", 2000.0), cpuinfo_number("cpu family", 0.0)
    if "AMD" in hw.cpu and unit.startswith("avx512") and family < 26:
        per_cycle //= 2
    cores = usable_cores()
    zen = zen_generation(int(family), hw.flags) if "AMD" in hw.cpu else None
    width = {"Zen 4": ": 512-bit at half rate", "Zen 5": ": full-width 512-bit"}.get(zen, "")
    return cores * mhz * 1e6 * per_cycle, f"{unit} x {cores} cores at {mhz:,.0f} MHz" + (f", {zen}{width}" if zen else "")


def forward_flops(hf_model, lengths) -> np.ndarray:
    """Matrix-multiply FLOPs of one forward pass of ``hf_model`` over sequences of these real token counts."""
    import torch

    config = hf_model.config
    linear = sum(m.weight.numel() for m in hf_model.modules()
                 if isinstance(m, torch.nn.Linear) and m.weight.shape[0] != config.num_labels)
    lengths = np.asarray(lengths, dtype=float)
    attention = 4 * config.num_hidden_layers * config.hidden_size * lengths**2  # scores and weighted sum
    return 2 * linear * lengths + attention


def flops_per_text(model, texts: list[str], truncate: bool = False) -> float:
    """Matrix-multiply FLOPs of one forward pass over each text's real tokens (no padding), averaged:
    every window sentitune reads under its long-text strategy, or (``truncate``) only the first
    max_length tokens, as the pipeline reads them."""
    windows = model.tokenizer(texts, truncation=True, max_length=model.meta.max_length)["input_ids"] if truncate \
        else model._tokenize(texts)
    return float(np.sum(forward_flops(model.model, [len(ids) for ids in windows])) / len(texts))


def tokenizer_rate(model, texts: list[str]) -> float:
    """texts/s of tokenization alone (the fast tokenizer, as the model calls it): the part no kernel speeds up."""
    start = time.perf_counter()
    model._tokenize(texts)
    return len(texts) / (time.perf_counter() - start)


def texts_from(rows: list[dict], sources: tuple[str, ...], n: int, seed: int = 0) -> list[dict]:
    picked = [r for r in rows if r["source"] in sources] or read_jsonl(sample_path("test"))
    random.Random(seed).shuffle(picked)
    return picked[:n]


def throughput(predict_batch, texts: list[str]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    labels = np.asarray(predict_batch(texts))
    return len(texts) / (time.perf_counter() - start), labels


def latency(predict_one, texts: list[str]) -> tuple[float, float]:
    predict_one(texts[0])  # warm-up: lazy initialisation is not a request's cost
    lat = []
    for t in texts[:SINGLES]:
        start = time.perf_counter()
        predict_one(t)
        lat.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 95))


def measure(paths: dict, texts: list[str], rounds: int = 2) -> dict:
    """texts/s (best of ``rounds``, interleaved so every path sees the same machine), p50, p95, labels."""
    rates: dict[str, float] = {}
    labels: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for name, (batch, _one, sub) in paths.items():
            rate, labels[name] = throughput(batch, texts[:sub])
            rates[name] = max(rate, rates.get(name, 0.0))
    return {name: (rates[name], *latency(one, texts), labels[name]) for name, (_b, one, _s) in paths.items()}


def speed_table(results: dict, gold: np.ndarray, reference: np.ndarray, best_pipe: float, flops: dict[str, float],
                arithmetic: dict[str, str]) -> str:
    rows = []
    for name, (rate, p50, p95, labels) in results.items():
        n = len(labels)
        kind = arithmetic.get(name)
        work = flops["pipeline" if name.startswith("pipeline") or name == AUTO_HEAD else "sentitune"]
        share = f"{rate * work / peak_flops(kind)[0]:.0%} of {kind}" if kind else ""
        rows.append([name, f"{rate:,.0f}", f"{rate / best_pipe:.2f}x", share, f"{p50:.1f}", f"{p95:.1f}",
                     f"{(labels == gold[:n]).mean():.4f}", f"{(labels == reference[:n]).mean():.4f}"])
    return markdown_table(
        ["path", "texts/s", "vs best pipeline", "of peak", "p50 ms (1 text)", "p95 ms", "accuracy", "same label as fp32"],
        rows,
    )


def held_out_agreement(models: dict, rows: list[dict]) -> tuple[str, dict]:
    """Accuracy and label agreement with PyTorch fp32 on the whole held-out split, per subset."""
    texts, gold = [r["text"] for r in rows], np.array([r["label"] for r in rows])
    source = np.array([r["source"] for r in rows])
    subsets = {"short texts": np.isin(source, SHORT), "long reviews": np.isin(source, LONG)}
    subsets["other sources"] = ~(subsets["short texts"] | subsets["long reviews"])
    subsets["all"] = np.ones(len(rows), dtype=bool)
    labels = {name: m.predict_proba(texts).argmax(1) for name, m in models.items()}
    reference = labels["sentitune PyTorch"]
    table, agreement = [], {}
    for name, lab in labels.items():
        agreement[name] = {s: float((lab[mask] == reference[mask]).mean()) for s, mask in subsets.items()}
        agreement[name]["accuracy"] = float((lab == gold).mean())
        table.append([name, f"{agreement[name]['accuracy']:.4f}"] + [f"{agreement[name][s]:.4f}" for s in subsets])
    headers = ["path", "accuracy"] + [f"same label as PyTorch: {s} ({m.sum():,})" for s, m in subsets.items()]
    return markdown_table(headers, table), agreement


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--held-out", type=Path, default=Path("runs/default/data/test.jsonl"),
                    help="written by build_data in scripts/train_default_model.py")
    args = ap.parse_args()
    from transformers import pipeline

    held_out = read_jsonl(args.held_out) if args.held_out.exists() else []
    english = sentitune.ENGLISH_MODEL_PATH
    auto = sentitune.load(english, precision="auto")
    default, bf16 = sentitune.load(english, precision="fp32"), sentitune.load(english, precision="bf16")
    tmp = Path(tempfile.mkdtemp())
    onnx32 = sentitune.load(export_onnx(english, tmp / "fp32"))
    onnx8 = sentitune.load(export_onnx(english, tmp / "int8", "int8"))
    # the bundled sample trains tfidf in seconds (the default model's 57k-row split takes many minutes)
    tfidf = TfidfModel().fit(read_jsonl(sample_path("train")))
    chosen = auto.inference_path.split(" ")[0]
    auto_head = sentitune.load(english, precision="auto")
    auto_head.meta = auto_head.meta.model_copy(update={"long_text": LongTextConfig()})  # truncate, as the pipeline
    models = {AUTO: auto, "sentitune PyTorch": default, "sentitune PyTorch bf16": bf16, "sentitune ONNX fp32": onnx32,
              "sentitune ONNX int8": onnx8, "tfidf (bundled sample)": tfidf}
    arithmetic = {**PATH_ARITHMETIC, AUTO: chosen, AUTO_HEAD: chosen} | {f"pipeline, batch {bs}": "fp32" for bs in (1, 8, 32, 64)}
    pipe = pipeline("text-classification", model=default.model, tokenizer=default.tokenizer, device=-1)
    pipe_label = lambda out: [int(o["label"] == "POSITIVE") for o in out]  # noqa: E731
    peaks = "; ".join(f"{k} {peak_flops(k)[0] / 1e12:.2f} TOP/s ({peak_flops(k)[1]})" for k in ("fp32", "bf16", "int8"))
    head = f"`sentitune.load()` chose: {auto.inference_path}.  \nPeaks assumed: {peaks}." + (
        f"  \n`ONEDNN_MAX_CPU_ISA={isa_cap()}`: oneDNN kept below that ISA." if isa_cap() else "")
    print(head, flush=True)

    sections, summary = [head], {}
    for name, sources in (("short texts", SHORT), ("long reviews", LONG)):
        rows = texts_from(held_out, sources, args.n)
        texts, gold = [r["text"] for r in rows], np.array([r["label"] for r in rows])
        paths = {
            f"pipeline, batch {bs}": (
                lambda t, bs=bs: pipe_label(pipe(t, batch_size=bs, truncation=True, max_length=128)),
                lambda t: pipe(t, truncation=True, max_length=128),
                len(texts) if bs > 1 else max(SINGLES, len(texts) // 10),  # batch 1 is slow: fewer texts
            )
            for bs in (1, 8, 32, 64)
        }
        timed = models | ({AUTO_HEAD: auto_head} if name == "long reviews" else {})
        paths |= {label: (lambda t, m=m: m.predict_proba(t).argmax(1), lambda t, m=m: m.predict_proba([t]), len(texts))
                  for label, m in timed.items()}
        results = measure(paths, texts)
        best_pipe = max(v[0] for k, v in results.items() if k.startswith("pipeline") and not k.endswith(" 1"))
        flops = {"sentitune": flops_per_text(default, texts), "pipeline": flops_per_text(default, texts, truncate=True)}
        table = speed_table(results, gold, results["sentitune PyTorch"][3], best_pipe, flops, arithmetic)
        tokens = tokenizer_rate(default, texts)
        where = (f"{flops['sentitune'] / 1e9:.2f} GFLOP per text as sentitune reads it ({default.meta.long_text.strategy}), "
                 f"{flops['pipeline'] / 1e9:.2f} as the pipeline does (first {default.meta.max_length} tokens); "
                 f"tokenization alone {tokens:,.0f} texts/s, {results[AUTO][0] / tokens:.0%} of the auto path's time")
        print(f"\n{name} ({len(texts)} texts): {where}\n{table}", flush=True)
        sections.append(f"### {name} ({len(texts)} texts)\n\n{where}.\n\n{table}")
        summary[name] = (results, best_pipe)

    rows = held_out or read_jsonl(sample_path("test"))
    table, agreement = held_out_agreement({k: v for k, v in models.items() if not k.startswith("tfidf")}, rows)
    where = f"the default model's held-out split ({len(rows):,} rows)" if held_out else "the bundled test split"
    print(f"\nagreement on {where}\n{table}")
    sections.append(f"### Labels on {where}\n\n{table}")
    sections.append(targets(summary, agreement) + "\n\n" + PATHS_NOTE)
    print("\n" + sections[-1])
    kind = cpu_kind(detect()) + (f"-isa-{isa_cap().lower()}" if isa_cap() else "")
    title = f"Inference speed: plain pipeline vs sentitune ({cpu_title()}{', oneDNN capped at ' + isa_cap() if isa_cap() else ''})"
    write_section(f"speed-{kind}", title, "\n\n".join(sections))


def targets(summary: dict, agreement: dict) -> str:
    results, best_pipe = summary["short texts"]
    fastest = AUTO  # the bar is about the path sentitune picks by itself
    long, long_pipe = summary["long reviews"]
    ratio = results[fastest][0] / best_pipe
    points = 100 * (agreement[fastest]["accuracy"] - agreement["sentitune PyTorch"]["accuracy"])
    p50_short, p50_long = results[fastest][1], long[fastest][1]
    int8 = agreement["sentitune ONNX int8"]
    met = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731
    tfidf = results["tfidf (bundled sample)"][0]
    rows = [
        ["automatically chosen path >= 4x the best-batched pipeline (short texts), accuracy within 0.5 points",
         f"{fastest}: {ratio:.2f}x ({results[fastest][0]:,.0f} vs {best_pipe:,.0f} texts/s), {points:+.2f} points",
         met(ratio >= 4 and abs(points) <= 0.5)],
        ["automatically chosen path >= 2.5x on long reviews",
         f"{long[fastest][0] / long_pipe:.2f}x reading every window (chunks); {long[AUTO_HEAD][0] / long_pipe:.2f}x "
         "reading the first tokens, as the pipeline does", met(long[fastest][0] / long_pipe >= 2.5)],
        ["p50 single-text latency < 15 ms (automatically chosen path)", f"{p50_short:.1f} ms short, {p50_long:.1f} ms long review",
         met(p50_short < 15)],
        ["tfidf > 5,000 texts/s (short texts)", f"{tfidf:,.0f} texts/s", met(tfidf > 5000)],
        ["ONNX int8 same label as PyTorch >= 99% (whole held-out split)",
         f"{int8['all']:.4f} (short {int8['short texts']:.4f}, long {int8['long reviews']:.4f})", met(int8["all"] >= 0.99)],
    ]
    return "### Targets\n\n" + markdown_table(["target", "measured", "status"], rows)


if __name__ == "__main__":
    main()
