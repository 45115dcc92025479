"""The one interface every method implements.

Modelled on scikit-learn estimators: ``fit`` on plain rows, ``predict`` / ``predict_proba`` on plain
lists of strings. Each method only has to produce raw two-column scores (``logits``: column 0
NEGATIVE, column 1 POSITIVE, any monotone scale whose softmax is a probability); calibration
(temperature), label names and the result format live here once.
"""

from __future__ import annotations

import hashlib
import unicodedata
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from sentitune.artifact import LABELS, ArtifactMeta, write_meta
from sentitune.errors import SentituneError


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# Characters that show nothing: whitespace plus control (Cc: NUL ...) and format (Cf: zero-width
# space, direction overrides, BOM ...) characters. A text made only of these is empty.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf"})


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be scored ("is empty", "is not valid UTF-8 ..."), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from a JSON "\ud800" escape
        return f"is not valid UTF-8 (a lone surrogate at character {exc.start})"
    # stops at the first visible character, so a normal text costs one lookup
    if all(c.isspace() or unicodedata.category(c) in INVISIBLE_CATEGORIES for c in text):
        return "is empty"
    return None


def check_texts(texts: Sequence[str] | str) -> list[str]:
    """Validate inference input: a non-empty list of strings, each with a visible character."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise SentituneError(f"text {i} is {type(t).__name__}, expected a string")
        problem = text_problem(t)
        if problem:
            raise SentituneError(f"text {i} {problem}")
    return texts


UNKNOWN_WARN_FRACTION = 0.3
# (labels, probabilities (n, 2)) -> named figures; the training pipeline passes its metrics in, so
# checkpoint selection can use them without methods importing evaluation
Scorer = Callable[[np.ndarray, np.ndarray], dict]


@dataclass(frozen=True)
class Capabilities:
    """What a method offers beyond the one interface; callers read this instead of probing attributes."""

    explain: bool = False  # ``explain(texts, labels)`` generates a short reason per text
    batch_size: bool = False  # ``batch_size`` sets how many texts one forward pass takes
    tokenizer: bool = False  # ``tokenizer`` is a Hugging Face tokenizer (unreadable-text warnings)


def unreadable_message(tokenizer, texts: list[str], base_model: str | None) -> str | None:
    """Why ``tokenizer`` cannot read ``texts`` (most tokens unknown, e.g. Chinese with an English
    vocabulary), or None. Byte-level BPE (Qwen, Llama) has no unknown token and reads anything."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return None
    special = set(tokenizer.all_special_ids) - {unk}
    tokens = [i for ids in tokenizer(texts[:2000], truncation=True, max_length=256)["input_ids"] for i in ids if i not in special]
    frac = sum(i == unk for i in tokens) / len(tokens) if tokens else 0.0
    if frac <= UNKNOWN_WARN_FRACTION:
        return None
    return (f"{frac:.0%} of tokens are unknown to the {base_model} tokenizer: it cannot read this text "
            "(e.g. Chinese with an English vocabulary). Use a multilingual model or --method tfidf.")


def warn_if_unreadable(tokenizer, texts: list[str], base_model: str | None) -> None:
    if message := unreadable_message(tokenizer, texts, base_model):
        warnings.warn(message, stacklevel=3)


class SentimentModel(ABC):
    """Base class of every method. Subclasses set ``method`` and implement the abstract methods."""

    method: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    labels: tuple[str, ...] = LABELS
    tokenizer: Any = None  # set by methods with capabilities.tokenizer
    batch_size: int | None = None  # set by methods with capabilities.batch_size
    inference_path: str = "as built"  # set by sentitune.load: the precision it chose and why

    def __init__(self, meta: ArtifactMeta | None = None):
        self.meta = meta or ArtifactMeta(method=self.method)
        self.enable_cache(0)

    # --- what a method implements ---------------------------------------------------------------
    def fit(self, train: list[dict], val: list[dict] | None = None, config: Any = None, *,
            metrics: Scorer | None = None) -> "SentimentModel":
        """Train on rows with ``text`` and ``label`` (0/1); ``metrics`` may rank checkpoints. Returns self."""
        raise SentituneError(f"method {self.method!r} is not trainable")

    @abstractmethod
    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw scores, shape (n, 2), before temperature."""

    @abstractmethod
    def save_weights(self, directory: Path) -> list[str]:
        """Write weights/tokenizer into ``directory``; return the file names required to load."""

    @classmethod
    @abstractmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None) -> "SentimentModel":
        """Restore from a directory written by ``save`` (``read_meta`` has checked its files).

        Every method takes ``precision`` ("fp32"/"bf16"; None: ``SENTITUNE_PRECISION`` or fp32) and
        ``device`` (None: where it loads); methods without torch weights accept and ignore both.
        A method may add keyword options of its own after them.
        """

    def placed(self, device: str | None) -> "SentimentModel":
        """Self, moved to ``device`` when one is given (the end of every ``from_artifact``)."""
        return self.to(device) if device else self

    def explain(self, texts: Sequence[str] | str, labels: Sequence[str] | None = None) -> list[str]:
        """A short reason per text; only methods with ``capabilities.explain`` have one."""
        raise SentituneError(f"method {self.method!r} cannot explain its predictions")

    def enable_cache(self, size: int) -> "SentimentModel":
        """Remember the raw scores of recently seen texts; ``size`` 0 turns the cache off.

        Services see the same texts again and again (retweets, templated reviews, retries); a hit
        skips tokenization and the model. The ``size`` most recent distinct texts stay in this
        process, or, when ``REDIS_URL`` is set, every text stays in Redis for ``REDIS_TTL`` seconds,
        shared by all workers (``sentitune.methods.cache``).
        """
        from sentitune.methods.cache import make_cache

        self._cache = make_cache(size, self._model_id)
        self.cache_hits = self.cache_misses = 0
        return self

    def _model_id(self) -> str:
        """Changes with anything that changes the scores: a shared cache must not mix models."""
        return hashlib.sha256(self.meta.model_dump_json().encode()).hexdigest()

    def _cached_logits(self, texts: list[str]) -> np.ndarray:
        # distinct texts ordered by their last use in this call, so an LRU keeps the latest ones
        unique = list(dict.fromkeys(reversed(texts)))[::-1]
        found = dict(zip(unique, self._cache.get_many(unique)))
        missing = [t for t in unique if found[t] is None]
        if missing:
            rows = np.asarray(self.logits(missing), dtype=np.float64)
            self._cache.put_many(missing, rows)
            found.update(zip(missing, rows))
        self.cache_misses += len(missing)
        self.cache_hits += len(texts) - len(missing)
        return np.stack([found[t] for t in texts])

    def unreadable_warning(self, texts: list[str]) -> str | None:
        """Why this model cannot read ``texts`` (its vocabulary sees mostly unknown tokens), or None."""
        if not self.capabilities.tokenizer:
            return None
        return unreadable_message(self.tokenizer, texts, self.meta.base_model)

    def to(self, device: str) -> "SentimentModel":
        """Move to a torch device ("cpu", "cuda", "auto"); methods without torch weights ignore it."""
        return self

    # --- shared behaviour ----------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        return self.meta.temperature

    def predict_proba(self, texts: Sequence[str] | str) -> np.ndarray:
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, 2))
        logits = self._cached_logits(texts) if self._cache is not None else self.logits(texts)
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature)

    def predict(self, texts: Sequence[str] | str) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def predict_records(self, texts: Sequence[str] | str) -> list[dict]:
        """``{"text", "label", "confidence", "probabilities"}`` per text, as the CLI and API print."""
        texts = check_texts(texts)
        proba = self.predict_proba(texts)
        out = []
        for text, p in zip(texts, proba):
            k = int(p.argmax())
            out.append(
                {
                    "text": text,
                    "label": self.labels[k],
                    "confidence": float(p[k]),
                    "probabilities": {lab: float(v) for lab, v in zip(self.labels, p)},
                }
            )
        return out

    def save(self, directory: str | Path) -> Path:
        """Weights first, ``sentitune.json`` (with their digests) last: an interrupted save never
        leaves metadata that vouches for files it did not see complete."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.meta.files = self.save_weights(directory)
        write_meta(directory, self.meta)
        return directory

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_model={self.meta.base_model!r})"
