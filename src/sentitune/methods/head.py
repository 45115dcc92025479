"""`head`: frozen encoder embeddings + a linear (logistic-regression) head.

The encoder is never trained, so the artifact is only the head (a few KB) and training is one
embedding pass plus a convex fit. Embeddings are cached on disk per (model, texts), so re-fitting
the head with other settings takes seconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from sentitune.artifact import ArtifactMeta
from sentitune.config import TrainConfig
from sentitune.errors import ArtifactError
from sentitune.methods.base import SentimentModel
from sentitune.methods.classifier import quiet_transformers, warn_if_unreadable
from sentitune.zoo import cache_dir, resolve_model

HEAD_FILE = "head.json"


class Encoder:
    """A frozen HF encoder turning texts into pooled, L2-normalised embeddings."""

    def __init__(self, name: str, pooling: str = "mean", max_length: int = 256, batch_size: int = 64):
        self.name, self.pooling, self.max_length, self.batch_size = name, pooling, max_length, batch_size
        path = resolve_model(name)
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).eval()

    def _cache_file(self, texts: list[str]) -> Path:
        h = hashlib.sha1(json.dumps([self.name, self.pooling, self.max_length, texts]).encode()).hexdigest()
        return cache_dir().parent / "embeddings" / f"{h}.npy"

    @torch.inference_mode()
    def encode(self, texts: list[str], cache: bool = False, progress: bool = False) -> np.ndarray:
        path = self._cache_file(texts) if cache else None
        if path is not None and path.is_file():
            return np.load(path)
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        starts = range(0, len(order), self.batch_size)
        for start in tqdm(starts, desc="embedding", disable=not progress):
            idx = order[start : start + self.batch_size]
            batch = self.tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:  # mean over real tokens
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, out)
        return out


class EmbeddingHead(SentimentModel):
    method = "head"

    def __init__(self, meta: ArtifactMeta | None = None, encoder: Encoder | None = None, head: LogisticRegression | None = None):
        super().__init__(meta)
        self.encoder, self.head = encoder, head

    def fit(self, train: list[dict], val: list[dict] | None = None, config: TrainConfig | None = None):
        cfg = config or TrainConfig(method="head")
        base = cfg.resolved_model()
        pooling = "mean" if cfg.pooling == "model" else cfg.pooling
        self.meta = ArtifactMeta(method=self.method, base_model=base, max_length=cfg.max_length, options={"pooling": pooling})
        self.encoder = Encoder(base, pooling, cfg.max_length)
        texts = [r["text"] for r in train]
        warn_if_unreadable(self.encoder.tokenizer, self.encoder.tokenizer(texts[:2000], truncation=True)["input_ids"], base)
        x = self.encoder.encode(texts, cache=True, progress=True)
        self.head = LogisticRegression(C=10.0, max_iter=2000).fit(x, [int(r["label"]) for r in train])
        return self

    def logits(self, texts: list[str]) -> np.ndarray:
        z = self.head.decision_function(self.encoder.encode(texts))
        return np.stack([np.zeros_like(z), z], axis=1)  # softmax([0, z]) = sigmoid(z)

    def save_weights(self, directory: Path) -> list[str]:
        head = {"coef": self.head.coef_[0].tolist(), "intercept": float(self.head.intercept_[0])}
        (directory / HEAD_FILE).write_text(json.dumps(head))
        return [HEAD_FILE]

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, **kwargs: Any) -> "EmbeddingHead":
        try:
            raw = json.loads((directory / HEAD_FILE).read_text())
            head = LogisticRegression()
            head.coef_, head.intercept_ = np.array([raw["coef"]]), np.array([raw["intercept"]])
            head.classes_ = np.array([0, 1])
        except (ValueError, KeyError) as exc:
            raise ArtifactError(f"{directory / HEAD_FILE} is corrupt: {exc}") from None
        encoder = Encoder(meta.base_model or "all-minilm-l6-v2", meta.options.get("pooling", "mean"), meta.max_length)
        return cls(meta, encoder, head)
