"""Which inference path is fastest on this machine, decided from what the CPU (or GPU) offers.

A CPU's instruction set decides whether bf16 or int8 arithmetic is native or emulated: bf16 ran the
default model 6.1x faster than the plain pipeline on a CPU with AMX, but on CPUs without AMX or
AVX512-BF16 it is emulated and slower than fp32. ``choose_precision`` is a pure function of the
flags so the rule can be tested for every kind of CPU on any machine.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

# the flags that matter for transformer inference, as Linux /proc/cpuinfo names them
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")


@dataclass(frozen=True)
class Hardware:
    cpu: str
    flags: frozenset[str]
    cuda: bool = False

    def describe(self) -> str:
        have = [f for f in (*BF16_FLAGS, *INT8_FLAGS) if f in self.flags]
        return f"{self.cpu} ({', '.join(have) or 'no bf16/int8 instructions'})" + (", CUDA GPU" if self.cuda else "")


@dataclass(frozen=True)
class Choice:
    precision: str  # "fp32" or "bf16"
    reason: str


def choose_precision(hw: Hardware) -> Choice:
    """bf16 where the CPU computes it natively (AMX or AVX512-BF16), else fp32; on a GPU the torch
    path stays fp32 here (mixed precision on CUDA is the trainer's business)."""
    if hw.cuda:
        return Choice("fp32", "CUDA device: fp32 weights")
    native = [f for f in BF16_FLAGS if f in hw.flags]
    if native:
        return Choice("bf16", f"the CPU has {' and '.join(native)}: bf16 matrix multiplies are native")
    return Choice("fp32", "the CPU has no AMX or AVX512-BF16: bf16 would be emulated, fp32 is faster")


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return (model[1].strip() if model else "unknown CPU"), frozenset(flags[1].split() if flags else ())


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@lru_cache(maxsize=1)
def detect() -> Hardware:
    """This machine's CPU model and flags (Linux; elsewhere no flags, so the safe fp32 path)."""
    try:
        cpu, flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        import platform

        cpu, flags = platform.processor() or platform.machine(), frozenset()
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    return Hardware(cpu, flags, cuda)


# bf16 is used by itself only where it gives fp32's label on this share of held-out texts
AGREEMENT_BAR = 0.995


def cpu_kind(hw: Hardware) -> str:
    """A file-name-safe name for the CPU model and the flags that change the arithmetic."""
    flags = "-".join(f for f in (*BF16_FLAGS, *INT8_FLAGS) if f in hw.flags) or "plain"
    return re.sub(r"[^A-Za-z0-9]+", "-", f"{hw.cpu}-{flags}").strip("-").lower()


def agreement_file(cache_dir: Path, artifact_key: str, hw: Hardware) -> Path:
    # per artifact and CPU kind: another CPU's bf16 kernels round differently, so it is measured again
    return Path(cache_dir) / "precision" / f"{artifact_key}-{cpu_kind(hw)}.json"


@dataclass(frozen=True)
class Measurement:
    """bf16 against fp32 for one artifact on one CPU kind: label agreement and texts/s of each."""

    agreement: float
    fp32_rate: float | None = None
    bf16_rate: float | None = None


def cached_measurement(cache_dir: Path, artifact_key: str, hw: Hardware) -> Measurement | None:
    """What was measured earlier for this artifact on this CPU kind, if anything."""
    import json

    try:
        record = json.loads(agreement_file(cache_dir, artifact_key, hw).read_text())
        return Measurement(float(record["agreement"]), record.get("fp32_texts_per_s"), record.get("bf16_texts_per_s"))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not measured yet, or an unreadable record: measure again


def record_measurement(cache_dir: Path, artifact_key: str, hw: Hardware, m: Measurement, texts: int) -> None:
    import json

    from sentitune.atomic import atomic_write_text

    path = agreement_file(cache_dir, artifact_key, hw)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"agreement": m.agreement, "fp32_texts_per_s": m.fp32_rate,
                                        "bf16_texts_per_s": m.bf16_rate, "texts": texts, "cpu": hw.describe()}))


def verified_choice(hw: Hardware, m: Measurement | None) -> Choice:
    """``choose_precision``, kept only if bf16 gave fp32's label on >= AGREEMENT_BAR of held-out texts
    and was not slower than fp32 there: flags say what the CPU can do, not what its kernels make of
    it (with AVX512-BF16 but no AMX, bf16 ran at 0.67x fp32 on one CPU and 1.7x on another)."""
    choice = choose_precision(hw)
    if choice.precision != "bf16" or m is None:
        return choice
    if m.agreement < AGREEMENT_BAR:
        return Choice("fp32", f"bf16 agreed with fp32 on {m.agreement:.2%} of held-out texts (< {AGREEMENT_BAR:.1%})")
    speeds = f"{m.bf16_rate:,.0f} vs {m.fp32_rate:,.0f} texts/s" if m.fp32_rate and m.bf16_rate else ""
    if speeds and m.bf16_rate < m.fp32_rate:
        return Choice("fp32", f"bf16 was slower than fp32 on held-out texts here ({speeds})")
    return Choice("bf16", f"{choice.reason}; agrees with fp32 on {m.agreement:.2%} of held-out texts"
                          + (f", {speeds}" if speeds else ""))


def artifact_key(directory: Path) -> str:
    """Names one artifact's weights: the hash of its sentitune.json (which lists every file's sha256),
    and for a router its sub-models' too (one retrained in place changes the router's scores)."""
    import hashlib

    from sentitune.artifact import META_FILE, read_meta

    meta = Path(directory) / META_FILE
    if not meta.is_file():
        return hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    data = meta.read_bytes()
    if read_meta(directory).method == "router":
        from sentitune.methods.router import route_dirs

        data += "".join(artifact_key(d) for d in route_dirs(directory).values()).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def heldout_texts(n: int = 400) -> list[str]:
    # the bundled sample's test split: never trained on, short and long texts of every source
    from sentitune.data import read_jsonl, sample_path

    return [r["text"] for _, r in zip(range(n), read_jsonl(sample_path("test")))]


def weights_precision(model: Any) -> str:
    """"bf16"/"fp32" for a model with torch weights, "n/a" for the rest (tfidf, ONNX, rules)."""
    weights = getattr(model, "model", None)
    dtype = next(weights.parameters()).dtype if hasattr(weights, "parameters") else None
    return {"torch.bfloat16": "bf16", "torch.float32": "fp32", "None": "n/a"}.get(str(dtype), str(dtype))


def measure(fast: Any, exact: Any, texts: list[str], step: int = 50) -> Measurement:
    """How often ``fast`` gives ``exact``'s label on ``texts``, and each one's texts/s (the two take
    turns chunk by chunk, so both see the same machine; the first chunk warms kernels up, untimed)."""
    import time

    from tqdm.auto import tqdm

    same, seconds = 0, {"fast": 0.0, "exact": 0.0}
    with tqdm(total=len(texts), desc="bf16 vs fp32 on this CPU (once)", leave=False, disable=None) as bar:
        for i in range(0, len(texts), step):
            chunk, labels = texts[i:i + step], {}
            for name, model in (("fast", fast), ("exact", exact)):
                start = time.perf_counter()
                labels[name] = np.asarray(model.predict(chunk))
                seconds[name] += (time.perf_counter() - start) if i else 0.0
            same += int(np.sum(labels["fast"] == labels["exact"]))
            bar.update(len(chunk))
    timed = len(texts) - min(step, len(texts))
    rate = {k: timed / v if v and timed else None for k, v in seconds.items()}
    return Measurement(same / len(texts), rate["exact"], rate["fast"])


def load_fastest(load_at: Callable[[str], Any], directory: Path, cache_dir: Path) -> tuple[Any, str]:
    """The model from ``load_at(precision)`` on the fastest path this CPU computes faithfully, and a
    line saying which and why.

    bf16 where the CPU has it natively, it gave fp32's label on >= AGREEMENT_BAR of held-out texts
    and it was not slower; that is measured once per artifact and CPU kind (two loads and 400 texts
    each, a few seconds) and kept under ``cache_dir``, so later loads build only the chosen precision."""
    hw = detect()
    native = choose_precision(hw)
    if native.precision != "bf16":
        return load_at("fp32"), f"fp32 ({native.reason})"
    key = artifact_key(directory)
    measured = cached_measurement(cache_dir, key, hw)
    if measured is not None:
        choice = verified_choice(hw, measured)
        return load_at(choice.precision), f"{choice.precision} ({choice.reason})"
    exact = load_at("fp32")
    if weights_precision(exact) == "n/a" and not exact.capabilities.tokenizer:
        return exact, "n/a (no torch weights)"
    fast = load_at("bf16")
    texts = heldout_texts()
    measured = measure(fast, exact, texts)
    record_measurement(cache_dir, key, hw, measured, len(texts))
    choice = verified_choice(hw, measured)
    return (fast if choice.precision == "bf16" else exact), f"{choice.precision} ({choice.reason})"
