"""What the Hugging Face methods (`classifier`, `instruct`, `zero-shot`, `head`) share: quiet
loading, tokenizers with a usable pad token, LoRA, saving/loading transformers artifacts, and the
long-text strategies of the token classifiers (`classifier` and its ONNX export).

With LoRA an artifact holds only the adapter (and new modules such as a classification head); the
base model is named in ``sentitune.json`` and resolved on load.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from sentitune.artifact import ArtifactMeta, read_meta, update_meta, write_meta
from sentitune.config import LongTextConfig
from sentitune.config import LoraConfig as LoraSettings
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods import SEQUENCE_CLASSIFIERS, get_method
from sentitune.methods.engine import require_tokenizer, resolve_precision
from sentitune.zoo import resolve_model

ADAPTER_FILES = ["adapter_config.json", "adapter_model.safetensors"]


@contextmanager
def quiet_transformers():
    """Silence transformers' load reports and weight-loading progress bars for the duration."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():  # peft calls APIs that transformers 5 marks deprecated
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def load_tokenizer(name_or_path: str):
    """The tokenizer, with a pad token a decoder's classification head can rely on.

    Decoder heads (Llama, Qwen, Gemma ...ForSequenceClassification) read the rightmost token that
    is not ``pad_token_id``, whichever side the padding is on. Many decoders ship without a pad
    token, or with pad = eos (SmolLM2); then a text ending in eos (a chat turn) would be read at
    the token before it. A distinct token is used instead: the unknown token, which byte-level BPE
    never emits; eos only when there is nothing else.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        unk = tokenizer.unk_token
        distinct = unk is not None and unk not in (tokenizer.eos_token, tokenizer.bos_token)
        tokenizer.pad_token = unk if distinct else (tokenizer.pad_token or tokenizer.eos_token)
    return tokenizer


def load_base_tokenizer(base: str):
    """The tokenizer of a base model (zoo name, directory or hub id), or a one-line error."""
    try:
        return load_tokenizer(resolve_model(base))
    except OSError as exc:  # a hub id that is not cached while offline, or a directory without one
        raise SentituneError(f"cannot load the tokenizer of {base}: {str(exc).splitlines()[0]}") from None


def add_lora(model, settings: LoraSettings, task_type: str):
    """``model`` under a new LoRA adapter with these settings; ``task_type`` is peft's (SEQ_CLS, CAUSAL_LM)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(task_type=task_type, r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules)
    with quiet_transformers():  # peft reads an attribute transformers 5 deprecated
        return get_peft_model(model, config)


def cast(model: torch.nn.Module, precision: str | None) -> torch.nn.Module:
    """``model`` in inference precision: bf16 when asked (argument or SENTITUNE_PRECISION), else as loaded."""
    return model.to(torch.bfloat16) if resolve_precision(precision) == "bf16" else model


# Texts the inference graph is traced on and then checked against: padded batches of different
# sizes, so the graph keeps the attention-mask path and no shape is baked in.
TRACE_TEXTS = (["a", "one two three four five six"], ["good", "not bad at all, really", "fine . fine . fine . fine . fine"])


def inference_forward(model: torch.nn.Module, tokenizer) -> tuple[Callable[[dict], torch.Tensor], str]:
    """The model's logits as a function of a padded batch, and what runs it.

    On a CPU, a frozen TorchScript graph of the forward pass: it skips transformers' Python between
    the kernels (~2 ms of a 5 ms one-text call of the default model on 2 Zen 4 cores) and runs without
    the GIL, so a server's event loop no longer stalls the model thread mid-call (a busy second
    thread made 20 eager batches take 14 s, the graph 1.4 s). The graph is checked against the eager
    model on texts it was not traced on; where tracing fails or differs (some decoders), or on a GPU,
    the eager model runs. Weights changed after this call are not seen by the graph: callers trace
    again after training."""

    def eager(batch: dict) -> torch.Tensor:
        return model(**batch).logits

    if next(model.parameters()).device.type != "cpu" or model.training:
        return eager, "eager"
    # padded as the predictors pad their batches (input ids and mask only)
    sample, check = (dict(tokenizer.pad({"input_ids": tokenizer(t)["input_ids"]}, return_tensors="pt")) for t in TRACE_TEXTS)
    names = list(sample)

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(**dict(zip(names, tensors))).logits

    try:
        # the tracer warns about every Python branch on a shape; the check below is what counts
        with torch.inference_mode(), quiet_transformers(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = torch.jit.freeze(torch.jit.trace(Logits().eval(), tuple(sample[n] for n in names), check_trace=False))
            same = torch.allclose(graph(*(check[n] for n in names)).float(), eager(check).float(), atol=1e-2, rtol=1e-2)
    except Exception as exc:  # noqa: BLE001 - any tracer failure leaves the eager model, which works
        return eager, f"eager (not traceable: {str(exc).splitlines()[0][:120]})"
    if not same:
        return eager, "eager (the traced graph differed from the model)"
    return (lambda batch: graph(*(batch[n] for n in names))), "TorchScript graph"


def save_model(model, tokenizer, directory: Path, lora: bool) -> list[str]:
    """Write the tokenizer and the weights (for LoRA only the adapter and new modules); the files
    required to load. Written into a temporary sibling first and renamed file by file, so a kill
    mid-save never leaves a half-written weight file under its final name."""
    if lora and not hasattr(model, "peft_config"):  # a transformers/peft object, not a sentitune model
        raise SentituneError("this LoRA model was merged for inference; save it before loading it for prediction")
    directory = Path(directory)
    with tempfile.TemporaryDirectory(prefix=".save-", dir=directory) as tmp:
        written = tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        for path in Path(tmp).iterdir():
            os.replace(path, directory / path.name)
    tokenizer_files = sorted({Path(p).name for p in written if (directory / Path(p).name).is_file()})
    if lora:
        return tokenizer_files + ADAPTER_FILES
    # one model.safetensors, or shards and their index for a model over save_pretrained's shard size
    return tokenizer_files + ["config.json", *sorted(p.name for p in directory.glob("model*.safetensors*"))]


def load_saved_tokenizer(directory: Path):
    require_tokenizer(directory)
    return load_tokenizer(str(directory))


def load_model(directory: Path, meta: ArtifactMeta, load: Callable[[str, Any], torch.nn.Module], merge: bool = True):
    """(model, tokenizer) saved by ``save_model``. ``load(path, tokenizer)`` builds a model from full
    weights: the artifact's own, or for LoRA its base model's, under the saved adapter."""
    from safetensors import SafetensorError

    try:
        tokenizer = load_saved_tokenizer(directory)
        if "lora" not in meta.options:
            return load(str(directory), tokenizer), tokenizer
        if not meta.base_model:
            raise ArtifactError(f"{directory}/sentitune.json names no base_model for its LoRA adapter")
        from peft import PeftModel

        with quiet_transformers():
            model = PeftModel.from_pretrained(load(meta.base_model, tokenizer), str(directory))
            if merge:  # inference: fold the adapter into the weights, no LoRA overhead per call
                model = model.merge_and_unload()
        return model, tokenizer
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # truncated or bad-header weights too
        raise ArtifactError(f"cannot load model from {directory}: {str(exc).splitlines()[0][:300]}") from None


def average_adapters(directories: Sequence[Path], out: Path, rank: int | None = None, half: bool = False,
                     weights: Sequence[float] | None = None) -> ArtifactMeta:
    """A soup of LoRA artifacts trained from one base with one LoRA scale alpha/r (other seeds, other
    data): one artifact whose weights are the mean of theirs (exactly, or its closest rank-``rank``
    approximation), at one model's inference cost; ``out`` is replaced. ``weights`` (default equal;
    normalised to sum 1) weigh the parts: a soup of two seeds, given weight 2 beside a third seed's
    model, makes the soup of all three.

    The weighted mean of the weight changes, sum w_i B_i A_i, is one LoRA of rank sum r_i: the A
    matrices stacked, the B matrices side by side, each times its w_i, alpha scaled with the rank so
    that alpha/r stays; modules saved whole (the classification head) are averaged with the same
    weights. Averaging fine-tuned weights ("model soups", Wortsman et al. 2022) keeps what the runs
    agree on and smooths what one seed got by chance. ``rank`` keeps, per module, the top ``rank``
    singular directions of that mean change (a truncated SVD: the closest rank-``rank`` matrix to
    it), so the soup is no bigger than one adapter when rank = r; ``half`` stores the LoRA factors in
    float16 instead (half the bytes at any rank; loading casts them back). On the accurate preset's
    two seeds the exact rank-32 soup scored 0.9134 mean over held-out English sources, in float16
    0.9138 (99.9% the same labels), cut to rank 16 0.9102. The temperature is the weighted mean of
    theirs: refit it on validation data (``calibrate_artifact``); no metrics are carried over."""
    from safetensors.torch import load_file, save_file

    config_file, weights_file = ADAPTER_FILES
    directories, out = [Path(d) for d in directories], Path(out)
    if out.resolve() in {d.resolve() for d in directories}:
        raise SentituneError(f"{out} is one of the models averaged: write the average elsewhere")
    metas = [read_meta(d) for d in directories]
    lora = [m.options.get("lora") for m in metas]
    if not all(lora) or len({(m.base_model, lo["alpha"] / lo["r"]) for m, lo in zip(metas, lora)}) != 1:
        raise SentituneError("only LoRA artifacts of one base model and one alpha/r can be averaged")
    share = np.ones(len(metas)) if weights is None else np.asarray(weights, dtype=np.float64)
    if share.shape != (len(metas),) or not np.all(share > 0):
        raise SentituneError(f"give one positive weight per model averaged ({len(metas)}), got {weights}")
    share = share / share.sum()
    tensors = [load_file(str(d / weights_file)) for d in directories]
    if len({frozenset(t) for t in tensors}) != 1:
        raise SentituneError("these adapters adapt different modules: they cannot be averaged")
    total = sum(lo["r"] for lo in lora)
    rank = min(rank or total, total)
    soup = {}
    for name in tensors[0]:
        parts = [t[name] for t in tensors]
        if "lora_A" in name:
            b_name = name.replace("lora_A", "lora_B")
            # float32 throughout: a part may be a soup stored in float16
            b = torch.cat([t[b_name].float() * float(w) for t, w in zip(tensors, share)], 1)
            soup[name], soup[b_name] = low_rank(torch.cat([p.float() for p in parts], 0), b, rank)
        elif "lora_B" not in name:
            soup[name] = sum(part * float(w) for part, w in zip(parts, share))
    if half:
        soup = {name: t.half() if "lora_" in name else t for name, t in soup.items()}
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(directories[0], out, ignore=shutil.ignore_patterns("checkpoints", "runs"))
    save_file(soup, str(out / weights_file), metadata={"format": "pt"})
    config = json.loads((out / config_file).read_text())
    # alpha / r is the scale of B A: it stays what each part had
    alpha = lora[0]["alpha"] * rank / lora[0]["r"]
    alpha = int(alpha) if alpha.is_integer() else alpha
    config.update(r=rank, lora_alpha=alpha)
    (out / config_file).write_text(json.dumps(config, indent=2) + "\n")
    meta = metas[0].model_copy(deep=True)
    meta.options["lora"].update(r=rank, alpha=alpha)
    meta.temperature = float(np.dot(share, [m.temperature for m in metas]))
    meta.metrics = {}  # they were the first model's
    meta.training = {**(meta.training or {}), "averaged": [str(d) for d in directories], "averaged_rank": rank,
                     "adapter_dtype": "float16" if half else "float32"}
    if weights is not None:
        meta.training["averaged_weights"] = [round(float(w), 6) for w in share]
    write_meta(out, meta)
    return meta


def low_rank(a: torch.Tensor, b: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LoRA factors (A', B') of at most ``rank`` rows/columns with B' A' the closest rank-``rank``
    matrix to B A (truncated SVD, computed from QR factors of B and A^T, never the full matrix)."""
    if rank >= a.shape[0]:
        return a.contiguous(), b.contiguous()
    qb, rb = torch.linalg.qr(b.double())
    qa, ra = torch.linalg.qr(a.double().T)
    u, s, vh = torch.linalg.svd(rb @ ra.T)
    root = s[:rank].sqrt()
    return (root[:, None] * vh[:rank] @ qa.T).to(a.dtype), (qb @ u[:, :rank] * root).to(b.dtype)


# ------------------------------------------------------------------------------ long texts
# What `sentitune tune long-text` and benchmarks/long_texts.py measure, cheapest first: on a tie
# the cheaper one is kept. Measured on the default model (benchmarks/RESULTS.md, long texts).
LONG_TEXT_CANDIDATES = (
    LongTextConfig(strategy="head"),
    LongTextConfig(strategy="head+tail", head_tokens=32),
    LongTextConfig(strategy="chunks", max_windows=2),
    LongTextConfig(strategy="chunks", max_windows=4),
    LongTextConfig(strategy="chunks", max_windows=8),
)


def reads_head(long_text: LongTextConfig | None) -> bool:
    """True when a text over max_length is simply truncated (the path every model had before)."""
    return long_text is None or long_text.strategy == "head"


def describe_long_text(long_text: LongTextConfig | None) -> str:
    if reads_head(long_text):
        return "head"
    if long_text.strategy == "head+tail":
        return f"head+tail ({long_text.head_tokens} + rest)"
    return f"chunks (<= {long_text.max_windows} windows)"


def _window_starts(length: int, budget: int, cap: int) -> list[int]:
    """Starts of consecutive windows of ``budget`` tokens covering ``length``; the last one ends at
    the text's end (overlapping its neighbour) so no window is a short, noisy remainder. Over
    ``cap`` windows, ``cap`` evenly spaced ones are kept, the first and the last among them."""
    n = math.ceil(length / budget)
    starts = [i * budget for i in range(n - 1)] + [length - budget]
    if n > cap:
        starts = [starts[int(i)] for i in np.linspace(0, n - 1, cap).round()]
    return starts


def text_windows(encodings: Sequence[tuple[Sequence[int], Sequence[int]]], max_length: int,
                 long_text: LongTextConfig) -> tuple[list[list[int]], np.ndarray]:
    """The token windows to score and, per window, the index of its text.

    ``encodings`` are whole texts as the tokenizer encodes them, special tokens included, each as
    (ids, special-tokens mask). A text within ``max_length`` is one window, exactly as encoded; a
    longer one keeps its leading and trailing special tokens (CLS/SEP, BOS) around each window.
    """
    windows: list[list[int]] = []
    owner: list[int] = []
    for i, (ids, mask) in enumerate(encodings):
        ids = list(ids)
        if len(ids) <= max_length:
            windows.append(ids)
            owner.append(i)
            continue
        lead = next((k for k, m in enumerate(mask) if not m), len(ids))
        trail = next((k for k, m in enumerate(reversed(mask)) if not m), 0)
        prefix, content, suffix = ids[:lead], ids[lead:len(ids) - trail], ids[len(ids) - trail:]
        budget = max_length - len(prefix) - len(suffix)
        if budget < 1:  # max_length leaves no room beside the special tokens: plain truncation
            parts = [ids[:max_length]]
        elif long_text.strategy == "head+tail":
            head = min(long_text.head_tokens, budget)
            parts = [prefix + content[:head] + content[len(content) - (budget - head):] + suffix]
        elif long_text.strategy == "chunks":
            parts = [prefix + content[s:s + budget] + suffix
                     for s in _window_starts(len(content), budget, long_text.max_windows)]
        else:
            parts = [prefix + content[:budget] + suffix]
        windows += parts
        owner += [i] * len(parts)
    return windows, np.asarray(owner, dtype=np.int64)


def mean_over_windows(window_logits: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Per text, the mean of its windows' logits (a text of one window keeps its own)."""
    total = np.zeros((n, window_logits.shape[1]), dtype=np.float64)
    np.add.at(total, owner, window_logits)
    return (total / np.bincount(owner, minlength=n)[:, None]).astype(np.float32)


def measure_long_text(model, texts: list[str], labels: Sequence[int],
                      candidates: Sequence[LongTextConfig] = LONG_TEXT_CANDIDATES) -> list[dict]:
    """Accuracy and texts/s of ``model`` (a `classifier` or `onnx`) on ``texts`` under each strategy."""
    labels = np.asarray(labels)
    saved = model.meta.long_text
    results = []
    try:
        for candidate in candidates:
            model.meta.long_text = candidate
            start = time.perf_counter()
            predicted = np.asarray(model.logits(texts)).argmax(axis=1)
            seconds = time.perf_counter() - start
            results.append({"strategy": describe_long_text(candidate), "long_text": candidate.model_dump(),
                            "accuracy": float((predicted == labels).mean()), "texts_per_s": len(texts) / seconds})
    finally:
        model.meta.long_text = saved
    return results


def token_counts(tokenizer, texts: list[str]) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]


def tune_long_text(model_path: str | Path, file: str | Path) -> tuple[list[dict], dict, int]:
    """Measure every strategy on the labelled texts of ``file`` longer than the model's max_length
    and write the most accurate (the cheaper on a tie) into its sentitune.json, with the figures.
    Returns (results, chosen, number of long texts)."""
    from sentitune.data import PrepareOptions, load_labelled

    meta = read_meta(model_path)
    if meta.method not in (*SEQUENCE_CLASSIFIERS, "onnx"):
        raise SentituneError(f"long-text strategies apply to `classifier`, `distill` and `onnx` models; this one is {meta.method!r}")
    model = get_method(meta.method).from_artifact(Path(model_path), meta)
    rows, _ = load_labelled(file, PrepareOptions(), clean=False, strict=True)
    counts = token_counts(model.tokenizer, [r["text"] for r in rows])
    long_rows = [r for r, n in zip(rows, counts) if n > meta.max_length]
    if not long_rows:
        raise SentituneError(f"{file} has no text longer than the model's {meta.max_length} tokens: nothing to measure")
    results = measure_long_text(model, [r["text"] for r in long_rows], [int(r["label"]) for r in long_rows])
    best = max(results, key=lambda r: r["accuracy"])  # max keeps the first (cheapest) of equals
    record = {"file": Path(file).name, "n": len(long_rows), "chosen": best["strategy"],
              "accuracy": {r["strategy"]: round(r["accuracy"], 4) for r in results}}
    update_meta(model_path, long_text=best["long_text"], metrics=meta.metrics | {"long_text": record})
    return results, best, len(long_rows)
