"""`classifier`: sequence classification, full fine-tuning or LoRA.

Works for BERT-style encoders (MiniLM, DistilBERT) and decoder LLMs with a classification head
(Qwen3, Llama/SmolLM2, Gemma 3): decoders get a pad token so the head can find the last real token.
With LoRA the artifact holds only the adapter and the new head (peft's ``modules_to_save``); the
base model is named in ``sentitune.json`` and resolved on load. For inference the adapter is merged
into the base weights, so a LoRA model runs exactly as fast as a fully fine-tuned one.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from sentitune.artifact import LABELS, ArtifactMeta
from sentitune.config import LoraConfig as LoraSettings, TrainConfig
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.base import SentimentModel, softmax, warn_if_unreadable
from sentitune.methods.engine import length_batches, resolve_device, resolve_precision
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
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        unk = tokenizer.unk_token
        distinct = unk is not None and unk not in (tokenizer.eos_token, tokenizer.bos_token)
        tokenizer.pad_token = unk if distinct else (tokenizer.pad_token or tokenizer.eos_token)
    return tokenizer


def add_lora(model, settings: LoraSettings, task_type: str):
    """``model`` under a new LoRA adapter with these settings; ``task_type`` is peft's (SEQ_CLS, CAUSAL_LM)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(task_type=task_type, r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules)
    with quiet_transformers():  # peft reads an attribute transformers 5 deprecated
        return get_peft_model(model, config)


def save_model(model, tokenizer, directory: Path, lora: bool) -> list[str]:
    """Write the tokenizer and the weights (for LoRA only the adapter and new modules); the files written."""
    if lora and not hasattr(model, "peft_config"):
        raise SentituneError("this LoRA model was merged for inference; save it before loading it for prediction")
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    if lora:
        return ADAPTER_FILES
    # one model.safetensors, or shards and their index for a model over save_pretrained's shard size
    return ["config.json", *sorted(p.name for p in Path(directory).glob("model*.safetensors*"))]


def load_model(directory: Path, meta: ArtifactMeta, load: Callable[[str, Any], torch.nn.Module], merge: bool = True):
    """(model, tokenizer) saved by ``save_model``. ``load(path, tokenizer)`` builds a model from full
    weights: the artifact's own, or for LoRA its base model's, under the saved adapter."""
    try:
        tokenizer = load_tokenizer(str(directory))
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
    except (OSError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"cannot load model from {directory}: {str(exc).splitlines()[0]}") from None


class SequenceClassifier(SentimentModel):
    method = "classifier"

    # Batches of up to 64 texts and 4,096 padded tokens: bf16 on AMX ran fastest there (fp32 is
    # flat across batch sizes); measured on the default model, short and long texts.
    def __init__(self, meta: ArtifactMeta | None = None, model=None, tokenizer=None, batch_size: int = 64,
                 max_tokens: int = 4096):
        super().__init__(meta)
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size, self.max_tokens = batch_size, max_tokens

    # ------------------------------------------------------------------------------ building
    @staticmethod
    def _load_base(base: str, tokenizer, frozen: bool = False) -> torch.nn.Module:
        # transformers 5 loads a checkpoint in its saved dtype (bf16 for Qwen3, Gemma): right for a
        # frozen LoRA base on a GPU, wrong for weights being trained (full fine-tuning keeps fp32
        # weights; mixed precision comes from autocast) and slow on most CPUs.
        dtype = "auto" if frozen and torch.cuda.is_available() else torch.float32
        # The head is new by design: transformers' "MISSING classifier.weight" report would only alarm.
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                resolve_model(base),
                dtype=dtype,
                num_labels=2,
                id2label=dict(enumerate(LABELS)),
                label2id={label: i for i, label in enumerate(LABELS)},
            )
        model.config.pad_token_id = tokenizer.pad_token_id
        return model

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=self.meta.max_length)["input_ids"]

    def fit(self, train: list[dict], val: list[dict] | None = None, config: TrainConfig | None = None):
        from datasets import Dataset

        from sentitune.methods.trainer import class_weighted_loss, train_model

        cfg = config or TrainConfig()
        base = cfg.resolved_model()
        self.tokenizer = load_tokenizer(resolve_model(base))
        self.meta = ArtifactMeta(method=self.method, base_model=base, max_length=cfg.max_length)
        model = self._load_base(base, self.tokenizer, frozen=cfg.lora.enabled)
        if cfg.lora.enabled:
            model = add_lora(model, cfg.lora, "SEQ_CLS")  # SEQ_CLS keeps the new head trainable and saved
            self.meta.options["lora"] = cfg.lora.model_dump()

        def encode(rows: list[dict]) -> Dataset:
            enc = self.tokenizer([r["text"] for r in rows], truncation=True, max_length=cfg.max_length)
            return Dataset.from_dict({**enc, "labels": [int(r["label"]) for r in rows]})

        train_ds = encode(train)
        warn_if_unreadable(self.tokenizer, [r["text"] for r in train], base)
        val_ds = encode(val) if val else None

        def compute_metrics(pred) -> dict:
            from sentitune.evaluation.metrics import classification_metrics

            m = classification_metrics(pred.label_ids, softmax(np.asarray(pred.predictions, dtype=np.float64)))
            return {k: v for k, v in m.items() if isinstance(v, float)}

        trainer = train_model(
            model, cfg, train_ds, val_ds, Path(cfg.output_dir) / "checkpoints",
            data_collator=DataCollatorWithPadding(self.tokenizer),
            compute_metrics=compute_metrics,
            compute_loss_func=class_weighted_loss([r["label"] for r in train]) if cfg.class_weights else None,
            processing_class=self.tokenizer,
        )
        self.model = trainer.model.eval()
        self.meta.training["global_steps"] = trainer.state.global_step
        self.meta.training["best_checkpoint"] = trainer.state.best_model_checkpoint
        return self

    # ------------------------------------------------------------------------------ inference
    @torch.inference_mode()
    def logits(self, texts: list[str]) -> np.ndarray:
        """Length-bucketed batches: tokenize once, sort by length, pad per batch, restore order."""
        encodings = self._tokenize(texts)
        out = np.empty((len(texts), 2), dtype=np.float32)
        device = next(self.model.parameters()).device
        for idx in length_batches([len(ids) for ids in encodings], self.batch_size, self.max_tokens):
            batch = self.tokenizer.pad({"input_ids": [encodings[i] for i in idx]}, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            out[idx] = self.model(**batch).logits.float().cpu().numpy()
        return out

    def to(self, device: str) -> "SequenceClassifier":
        self.model.to(resolve_device(device))
        return self

    # ------------------------------------------------------------------------------ persistence
    @property
    def is_lora(self) -> bool:
        return "lora" in self.meta.options

    def save_weights(self, directory: Path) -> list[str]:
        return save_model(self.model, self.tokenizer, directory, self.is_lora)

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, merge: bool = True, precision: str | None = None,
                      **kwargs: Any):
        """``precision`` "bf16" (or ``SENTITUNE_PRECISION=bf16``) casts the weights for inference."""
        bf16 = resolve_precision(precision) == "bf16"
        # _load_base re-syncs the head's pad id with the tokenizer's: the head finds the last token by it
        frozen = "lora" in meta.options
        model, tokenizer = load_model(directory, meta, lambda path, tok: cls._load_base(path, tok, frozen), merge)
        return cls(meta, (model.to(torch.bfloat16) if bf16 else model).eval(), tokenizer, **kwargs)
