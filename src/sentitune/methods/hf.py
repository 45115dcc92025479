"""What the Hugging Face methods (`classifier`, `instruct`, `zero-shot`, `head`) share: quiet
loading, tokenizers with a usable pad token, LoRA, and saving/loading transformers artifacts.

With LoRA an artifact holds only the adapter (and new modules such as a classification head); the
base model is named in ``sentitune.json`` and resolved on load.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import torch

from sentitune.artifact import ArtifactMeta
from sentitune.config import LoraConfig as LoraSettings
from sentitune.errors import ArtifactError, SentituneError
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
