"""What the transformer predictors (PyTorch `classifier`, ONNX) share: threads, precision and
length-bucketed batches.

`predict`, `evaluate`, `score` and the server all call a model's ``logits``; these pieces decide how
fast that call is on a CPU.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from sentitune.config import runtime_settings
from sentitune.errors import ArtifactError, SentituneError

PRECISIONS = ("fp32", "bf16", "auto")


def configure_threads() -> int:
    """Threads for inference: ``SENTITUNE_THREADS`` if set (applied to torch here), else torch's own
    intra-op setting.

    torch defaults to the physical cores (hyper-threads only contend for the same vector units),
    and Ray actors and users lower it with ``torch.set_num_threads``; onnxruntime sessions take the
    same number, so one setting governs both backends.
    """
    import torch

    threads = runtime_settings().threads  # validated there: a bad value is a one-line error
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def resolve_precision(precision: str | None) -> str:
    """``precision`` if given, else ``SENTITUNE_PRECISION``, else fp32; ``auto`` asks the CPU.

    bf16 ran the default model 2.4x (short texts) to 3.3x (long reviews) faster on a CPU with AMX and
    gave the same label as fp32 on 99.9% of its held-out split (benchmarks/speed.py); CPUs without
    AMX or AVX512-BF16 emulate it slowly, so ``auto`` takes it only where the CPU computes it natively
    (methods/hardware.py). fp32 stays the default until the fastest path is proven on every CPU kind.
    """
    if not precision:
        precision = runtime_settings().precision  # validated there against the same choices
    elif precision not in PRECISIONS:
        raise SentituneError(f"precision must be fp32, bf16 or auto, got {precision!r}")
    if precision == "auto":
        from sentitune.methods.hardware import choose_precision, detect

        return choose_precision(detect()).precision
    return precision


def resolve_device(device: str) -> str:
    """A torch device name; "auto" is the GPU when there is one."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def text_key(text: str) -> str:
    """A short fixed-length key per text for on-disk caches (teacher labels, embeddings)."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# A forward call's fixed cost in padded tokens' worth of compute: on 2 Zen 4 cores the default model's
# call through its TorchScript graph costs 2.5 ms + ~73 us per token of a full batch (eager: 4.2 ms;
# benchmarks/forward_cost.py).
CALL_COST_TOKENS = 34


def length_batches(lengths: Sequence[int], max_batch: int, max_tokens: int,
                   call_cost_tokens: int = CALL_COST_TOKENS) -> list[np.ndarray]:
    """Indices sorted by length, cut into batches of at most ``max_batch`` texts and ``max_tokens``
    padded tokens; similar lengths share a batch, so little compute goes to padding. A batch is also
    cut where the next, longer text would add more padding to it than a call of its own costs
    (``call_cost_tokens``): a server's micro-batch of 32 tweets of 5 to 54 tokens was otherwise one call
    padded to 2.6x its tokens. Callers write each batch's scores back to these indices, which restores
    the input order."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches, start = [], 0
    while start < len(order):
        stop = start + 1
        # sorted ascending: the last text of a batch is its longest, so padded size = count * that length
        while (stop < len(order) and stop - start < max_batch
               and (stop + 1 - start) * lengths[order[stop]] <= max_tokens
               and (stop - start) * (lengths[order[stop]] - lengths[order[stop - 1]]) <= call_cost_tokens):
            stop += 1
        batches.append(order[start:stop])
        start = stop
    return batches


# Every tokenizer sentitune saves is a fast (Rust) one, which save_pretrained always writes as
# tokenizer.json; without it transformers' own error is a multi-line list of fallbacks.
TOKENIZER_FILE = "tokenizer.json"


def require_tokenizer(directory: Path) -> None:
    """A one-line ArtifactError when a saved model directory has lost its tokenizer."""
    if not (Path(directory) / TOKENIZER_FILE).is_file():
        raise ArtifactError(f"{directory} is incomplete: missing {TOKENIZER_FILE} (the tokenizer)")
