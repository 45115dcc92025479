"""`classifier`: sequence classification, full fine-tuning or LoRA.

Works for BERT-style encoders (MiniLM, DistilBERT) and decoder LLMs with a classification head
(Qwen3, Llama/SmolLM2, Gemma 3): decoders get a pad token so the head can find the last real token.
With LoRA the artifact holds only the adapter and the new head (peft's ``modules_to_save``); the
base model is named in ``sentitune.json`` and resolved on load. For inference the adapter is merged
into the base weights, so a LoRA model runs exactly as fast as a fully fine-tuned one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from sentitune.artifact import LABELS, ArtifactMeta
from sentitune.config import TrainConfig
from sentitune.methods.base import Capabilities, Scorer, SentimentModel, softmax, warn_if_unreadable
from sentitune.methods.engine import length_batches, resolve_device
from sentitune.methods.hf import (
    add_lora, cast, inference_forward, load_model, load_tokenizer, mean_over_windows, quiet_transformers, reads_head,
    save_model, text_windows,
)
from sentitune.zoo import resolve_model


def soft_target_loss(hard: Callable | None = None) -> Callable:
    """Cross-entropy against soft targets ``[1 - p, p]`` (rows of shape (n, 2)), unweighted; integer
    labels (a validation set without soft labels) take ``hard`` (class-weighted) or plain cross-entropy."""

    def loss(outputs, labels, num_items_in_batch=None):
        logits = (outputs["logits"] if isinstance(outputs, dict) else outputs.logits).float()
        if labels.dim() == 1:
            return hard(outputs, labels) if hard else torch.nn.functional.cross_entropy(logits, labels.long())
        return -(labels.float() * torch.log_softmax(logits, dim=-1)).sum(-1).mean()

    return loss


class SequenceClassifier(SentimentModel):
    method = "classifier"
    capabilities = Capabilities(batch_size=True, tokenizer=True)

    # Batches of up to 64 texts and 4,096 padded tokens: bf16 on AMX ran fastest there (fp32 is
    # flat across batch sizes); measured on the default model, short and long texts.
    def __init__(self, meta: ArtifactMeta | None = None, model=None, tokenizer=None, batch_size: int = 64,
                 max_tokens: int = 4096):
        super().__init__(meta)
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self._forward = None  # (function, what runs it), made on the first prediction (hf.inference_forward)

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
        """The token sequences the model reads: one per text, or several for a long text under chunks."""
        return self._encode(texts)[0]

    def _encode(self, texts: list[str]) -> tuple[list[list[int]], np.ndarray | None]:
        """Token windows to score and, when a text has several, the text of each (None: one each).

        ``meta.long_text`` decides how a text over max_length is read (hf.text_windows); with the
        default (head) it is truncated, as before the setting existed. Short texts are encoded
        exactly as by truncation either way and take no extra step."""
        if reads_head(self.meta.long_text):
            return self.tokenizer(texts, truncation=True, max_length=self.meta.max_length)["input_ids"], None
        enc = self.tokenizer(texts, truncation=False, verbose=False, return_special_tokens_mask=True)
        if all(len(ids) <= self.meta.max_length for ids in enc["input_ids"]):
            return enc["input_ids"], None
        return text_windows(list(zip(enc["input_ids"], enc["special_tokens_mask"])), self.meta.max_length,
                            self.meta.long_text)

    def fit(self, train: list[dict], val: list[dict] | None = None, config: TrainConfig | None = None, *,
            metrics: Scorer | None = None):
        """``metrics`` scores validation predictions for checkpoint selection; without it the
        checkpoints are ranked by validation loss."""
        from datasets import Dataset

        from sentitune.methods.trainer import train_model

        cfg = config or TrainConfig(method=self.method)
        if metrics is None:
            cfg = cfg.model_copy(update={"metric_for_best_model": "loss"})
        base = cfg.resolved_model()
        self.tokenizer = load_tokenizer(resolve_model(base))
        self.meta = ArtifactMeta(method=self.method, base_model=base, max_length=cfg.max_length,
                                 long_text=cfg.long_text)
        model = self._load_base(base, self.tokenizer, frozen=cfg.lora.enabled)
        if cfg.lora.enabled:
            model = add_lora(model, cfg.lora, "SEQ_CLS")  # SEQ_CLS keeps the new head trainable and saved
            self.meta.options["lora"] = cfg.lora.model_dump()

        def encode(rows: list[dict]) -> Dataset:
            enc = self.tokenizer([r["text"] for r in rows], truncation=True, max_length=cfg.max_length)
            return Dataset.from_dict({**enc, "labels": self._targets(rows)})

        train_ds = encode(train)
        warn_if_unreadable(self.tokenizer, [r["text"] for r in train], base)
        val_ds = encode(val) if val else None

        def compute_metrics(pred) -> dict:
            m = metrics(*self._scored(np.asarray(pred.label_ids), softmax(np.asarray(pred.predictions, dtype=np.float64))))
            return {k: v for k, v in m.items() if isinstance(v, float)}

        trainer = train_model(
            model, cfg, train_ds, val_ds, Path(cfg.output_dir) / "checkpoints",
            data_collator=DataCollatorWithPadding(self.tokenizer),
            compute_metrics=compute_metrics if metrics is not None else None,
            compute_loss_func=self._loss(cfg, train),
            processing_class=self.tokenizer,
        )
        self.model, self._forward = trainer.model.eval(), None
        self.meta.training["global_steps"] = trainer.state.global_step
        self.meta.training["best_checkpoint"] = trainer.state.best_model_checkpoint
        return self

    # What a subclass trained on other targets (methods/distill.py) changes: the targets of each row,
    # the loss over them, and which rows and labels validation metrics score.
    def _targets(self, rows: list[dict]) -> list:
        """The gold label; when any row has ``soft_label`` (P(positive), e.g. one target shared by a
        group of counterfactual sentences), ``[1 - p, p]`` per row, a hard label giving ``[1 - y, y]``."""
        if not any(r.get("soft_label") is not None for r in rows):
            return [int(r["label"]) for r in rows]
        p = [float(r["label"] if r.get("soft_label") is None else r["soft_label"]) for r in rows]
        return [[1.0 - v, v] for v in p]

    def _loss(self, cfg: TrainConfig, train: list[dict]) -> Callable | None:
        from sentitune.methods.trainer import class_weighted_loss

        weighted = class_weighted_loss([r["label"] for r in train]) if cfg.class_weights else None
        if any(r.get("soft_label") is not None for r in train):
            return soft_target_loss(weighted)
        return weighted

    def _scored(self, label_ids: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if label_ids.ndim == 2:  # soft targets [1 - p, p]: metrics score their rounding
            label_ids = (label_ids[:, 1] >= 0.5).astype(int)
        return label_ids, proba

    # ------------------------------------------------------------------------------ inference
    @torch.inference_mode()
    def logits(self, texts: list[str]) -> np.ndarray:
        """Length-bucketed batches: tokenize once, sort by length, pad per batch, restore order.
        A long text's windows (``meta.long_text``) share the batches with the other texts; its
        logits are their mean."""
        encodings, owner = self._encode(texts)
        out = np.empty((len(encodings), 2), dtype=np.float32)
        device = next(self.model.parameters()).device
        forward = self.forward_runner[0]
        for idx in length_batches([len(ids) for ids in encodings], self.batch_size, self.max_tokens):
            batch = self.tokenizer.pad({"input_ids": [encodings[i] for i in idx]}, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            out[idx] = forward(batch).float().cpu().numpy()
        return out if owner is None else mean_over_windows(out, owner, len(texts))

    @property
    def forward_runner(self) -> tuple[Callable[[dict], torch.Tensor], str]:
        """The function that runs a padded batch through the model, and what it is (a TorchScript
        graph on a CPU, else the eager model), made once per set of weights."""
        if self._forward is None:
            self._forward = inference_forward(self.model, self.tokenizer)
        return self._forward

    def to(self, device: str) -> "SequenceClassifier":
        self.model.to(resolve_device(device))
        self._forward = None
        return self

    # ------------------------------------------------------------------------------ persistence
    @property
    def is_lora(self) -> bool:
        return "lora" in self.meta.options

    def save_weights(self, directory: Path) -> list[str]:
        return save_model(self.model, self.tokenizer, directory, self.is_lora)

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None, merge: bool = True) -> "SequenceClassifier":
        """``precision`` "bf16" (or ``SENTITUNE_PRECISION=bf16``) casts the weights for inference;
        ``merge=False`` keeps a LoRA adapter separate (as trained)."""
        # _load_base re-syncs the head's pad id with the tokenizer's: the head finds the last token by it
        frozen = "lora" in meta.options
        model, tokenizer = load_model(directory, meta, lambda path, tok: cls._load_base(path, tok, frozen), merge)
        return cls(meta, cast(model, precision).eval(), tokenizer).placed(device)
