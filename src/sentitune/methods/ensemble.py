"""`ensemble`: one artifact whose score is a weighted mean of its members' calibrated logits.

    sentitune.json  {"method": "ensemble", "options": {"members": {"ngrams": "../chinese", "e5": "../chinese_e5"},
                                                       "weights": {"ngrams": 0.5, "e5": 0.5}}}

Members are sentitune artifacts, referenced like a router's routes: by a path relative to the
ensemble's directory, or an absolute one. Each member's logits are divided by its own temperature and
averaged with the weights; the ensemble's own temperature (fitted by ``build_ensemble`` on the rows it
is given) calibrates the mean. Models that err differently gain most: the shipped Chinese route
averages character n-grams, strong where its training data came from, with a multilingual
encoder's head, which reads review domains it never saw better (benchmarks/chinese.py).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from sentitune.artifact import ArtifactMeta, read_meta, write_meta
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.base import SentimentModel
from sentitune.methods.router import describe, load_submodel, resolve_ref


class EnsembleModel(SentimentModel):
    method = "ensemble"

    def __init__(self, meta: ArtifactMeta | None = None, models: dict[str, SentimentModel] | None = None,
                 weights: dict[str, float] | None = None, sources: dict[str, Path] | None = None):
        self.models = models or {}  # set first: the base class hashes them into the cache's model id
        self.weights = weights or {name: 1.0 / max(len(self.models), 1) for name in self.models}
        self.sources = sources or {}  # member -> the directory it was loaded from
        super().__init__(meta or ArtifactMeta(method=self.method))

    def logits(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 2), dtype=np.float64)
        for name, model in self.models.items():
            z = np.asarray(model.logits(texts), dtype=np.float64) / model.temperature
            out += self.weights[name] * (z - z.mean(axis=1, keepdims=True))  # one scale for every member
        return out

    def unreadable_warning(self, texts: list[str]) -> str | None:
        messages = [f"{name}: {m}" for name, model in self.models.items() if (m := model.unreadable_warning(texts))]
        return "; ".join(messages) or None

    def fit(self, train: list[dict], val: list[dict] | None = None, config: Any = None, *, metrics: Any = None):
        raise SentituneError("an ensemble is composed of trained models, not trained: "
                             "sentitune.methods.ensemble.build_ensemble(out_dir, {name: model_dir})")

    def save_weights(self, directory: Path) -> list[str]:
        """Nothing is copied: the members stay where they are, referred to from ``directory``."""
        members = {name: os.path.relpath(path, Path(directory).resolve()) for name, path in self.sources.items()}
        self.meta.options = {**self.meta.options, "members": members}
        return []

    def to(self, device: str) -> "EnsembleModel":
        for model in self.models.values():
            model.to(device)
        return self

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None) -> "EnsembleModel":
        here = Path(directory).resolve()
        members, weights = meta.options.get("members"), meta.options.get("weights") or {}
        if not isinstance(members, dict) or not members:
            raise ArtifactError(f"{directory}/sentitune.json: an ensemble needs options.members, a name -> path map")
        models, sources = {}, {}
        for name, ref in members.items():
            path = sources[name] = resolve_ref(str(ref), here).resolve()
            if path == here:
                raise ArtifactError(f"ensemble {directory}: member {name!r} is the ensemble itself")
            try:
                models[name] = load_submodel(path, (here,), precision=precision, device=device)
            except ArtifactError as exc:
                raise ArtifactError(f"ensemble {directory}: member {name!r}: {exc}") from None
        return cls(meta, models, {name: float(weights.get(name, 1.0 / len(models))) for name in models}, sources)

    def _model_id(self) -> str:
        parts = [self.meta.model_dump_json(), *(m._model_id() for m in self.models.values())]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def __repr__(self) -> str:
        return f"EnsembleModel({', '.join(f'{n}={w:g}' for n, w in self.weights.items())})"


def build_ensemble(out_dir: str | Path, members: dict[str, str | Path], weights: dict[str, float] | None = None,
                   **meta_fields: Any) -> Path:
    """Write an ensemble artifact to ``out_dir`` that refers to ``members`` where they are (by paths
    relative to ``out_dir``: move them together). ``weights`` default to equal; ``meta_fields`` go into
    its sentitune.json (``temperature``: fitted on rows no member trained on; ``training``, ``metrics``)."""
    if not members:
        raise SentituneError("an ensemble needs at least one member")
    weights = weights or {name: 1.0 / len(members) for name in members}
    if set(weights) != set(members) or min(weights.values()) < 0 or sum(weights.values()) <= 0:
        raise SentituneError("ensemble weights: one weight >= 0 per member, not all 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    refs = {name: os.path.relpath(Path(path).resolve(), out.resolve()) for name, path in members.items()}
    for name, path in members.items():
        read_meta(path)  # fails now, naming the member, not at first use
    meta = ArtifactMeta(method=EnsembleModel.method, options={"members": refs, "weights": weights}, **meta_fields)
    write_meta(out, meta)
    model = EnsembleModel.from_artifact(out, read_meta(out))
    meta.base_model = describe(model.models)
    write_meta(out, meta)
    return out
