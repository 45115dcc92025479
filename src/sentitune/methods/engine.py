"""What the transformer predictors (PyTorch `classifier`, ONNX) share: threads, precision and
length-bucketed batches.

`predict`, `evaluate`, `score` and the server all call a model's ``logits``; these pieces decide how
fast that call is on a CPU.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from sentitune.errors import SentituneError

PRECISIONS = ("fp32", "bf16")


def configure_threads() -> int:
    """Threads for inference: ``SENTITUNE_THREADS`` if set (applied to torch here), else torch's own
    intra-op setting.

    torch defaults to the physical cores (hyper-threads only contend for the same vector units),
    and Ray actors and users lower it with ``torch.set_num_threads``; onnxruntime sessions take the
    same number, so one setting governs both backends.
    """
    import torch

    value = os.environ.get("SENTITUNE_THREADS")
    if value:
        if not value.isdigit() or int(value) == 0:
            raise SentituneError(f"SENTITUNE_THREADS must be a positive whole number, got {value!r}")
        if torch.get_num_threads() != int(value):
            torch.set_num_threads(int(value))
    return torch.get_num_threads()


def resolve_precision(precision: str | None) -> str:
    """``precision`` if given, else ``SENTITUNE_PRECISION``, else fp32.

    bf16 ran the default model 2.4x (short texts) to 3.3x (long reviews) faster on a CPU with AMX and
    gave the same label as fp32 on 99.9% of its held-out split (benchmarks/speed.py); CPUs without
    AMX or AVX512-BF16 emulate it slowly, so it is a choice, not the default.
    """
    where, value = ("precision", precision) if precision else ("SENTITUNE_PRECISION", os.environ.get("SENTITUNE_PRECISION"))
    if value and value not in PRECISIONS:
        raise SentituneError(f"{where} must be {' or '.join(PRECISIONS)}, got {value!r}")
    return value or "fp32"


def resolve_device(device: str) -> str:
    """A torch device name; "auto" is the GPU when there is one."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def length_batches(lengths: Sequence[int], max_batch: int, max_tokens: int) -> list[np.ndarray]:
    """Indices sorted by length, cut into batches of at most ``max_batch`` texts and ``max_tokens``
    padded tokens; similar lengths share a batch, so little compute goes to padding. Callers write
    each batch's scores back to these indices, which restores the input order."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches, start = [], 0
    while start < len(order):
        stop = start + 1
        # sorted ascending: the last text of a batch is its longest, so padded size = count * that length
        while stop < len(order) and stop - start < max_batch and (stop + 1 - start) * lengths[order[stop]] <= max_tokens:
            stop += 1
        batches.append(order[start:stop])
        start = stop
    return batches
