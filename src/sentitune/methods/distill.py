"""`distill`: a classifier student trained on a teacher's temperature-softened probabilities.

The student is any ``classifier`` encoder (its artifact loads exactly like one). Rows may carry
``soft: [p_neg, p_pos]`` (the teacher's probabilities) and/or a gold ``label``; the loss is
``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(gold)``, the gold term only on rows
that have a label (Hinton et al. 2015). Labelling by the teacher happens above this layer
(training.py loads the teacher); :func:`teacher_soft_labels` takes the loaded model object, so
methods never import the package root. Teacher probabilities are cached on disk per (teacher
digest, text), appended chunk by chunk, so a killed labelling run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sentitune.config import TrainConfig
from sentitune.methods.base import Scorer, SentimentModel
from sentitune.methods.classifier import SequenceClassifier
from sentitune.methods.engine import text_key
from sentitune.zoo import cache_dir

NO_LABEL = -1.0  # the gold column of a row the teacher alone labels
LABEL_CHUNK = 512  # texts labelled between two appends to the cache (what a kill can lose)


def teacher_digest(teacher: SentimentModel) -> str:
    """Changes with anything that changes the teacher's scores (its metadata lists its files' sha256)."""
    return hashlib.sha256(teacher.meta.model_dump_json().encode()).hexdigest()[:32]


def teacher_soft_labels(teacher: SentimentModel, texts: list[str], cache: Path | None = None) -> np.ndarray:
    """The teacher's calibrated probabilities (n, 2), cached in ``cache`` (default: the sentitune cache)."""
    path = cache or cache_dir().parent / "teacher_labels" / f"{teacher_digest(teacher)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    known: dict[str, list[float]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                known[row["k"]] = row["p"]
            except (ValueError, KeyError):  # a line cut by a kill mid-write: that text is labelled again
                continue
    keys = [text_key(t) for t in texts]
    todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in known))
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as tail:
            tail.seek(-1, 2)
            torn = tail.read(1) != b"\n"
    else:
        torn = False
    with path.open("a") as handle, tqdm(total=len(todo), desc="teacher labels", disable=not todo) as bar:
        if torn:  # end a line cut by a kill, so the next one starts clean
            handle.write("\n")
        for start in range(0, len(todo), LABEL_CHUNK):
            chunk = todo[start:start + LABEL_CHUNK]
            proba = teacher.predict_proba(chunk)
            lines = [json.dumps({"k": text_key(t), "p": [round(float(v), 6) for v in p]}) for t, p in zip(chunk, proba)]
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            known.update((text_key(t), list(map(float, p))) for t, p in zip(chunk, proba))
            bar.update(len(chunk))
    return np.array([known[k] for k in keys], dtype=np.float64)


def distill_loss(temperature: float, alpha: float):
    """The Trainer's ``compute_loss_func``: ``labels`` are rows ``[p_neg, p_pos, gold or -1]``."""

    def loss(outputs, labels, num_items_in_batch=None):
        logits = (outputs["logits"] if isinstance(outputs, dict) else outputs.logits).float()
        soft, gold = labels[:, :2].float(), labels[:, 2].long()
        teacher = torch.softmax(torch.log(soft.clamp_min(1e-8)) / temperature, dim=-1)  # re-soften at T
        student = torch.log_softmax(logits / temperature, dim=-1)
        kl = torch.nn.functional.kl_div(student, teacher, reduction="batchmean") * temperature**2
        has_gold = gold >= 0
        if not has_gold.any() or alpha >= 1.0:
            return kl
        ce = torch.nn.functional.cross_entropy(logits[has_gold], gold[has_gold])
        return alpha * kl + (1 - alpha) * ce

    return loss


class DistilledClassifier(SequenceClassifier):
    """A ``classifier`` whose training targets are a teacher's probabilities (see the module docstring)."""

    method = "distill"

    def fit(self, train: list[dict], val: list[dict] | None = None, config: TrainConfig | None = None, *,
            metrics: Scorer | None = None):
        cfg = config or TrainConfig(method=self.method)
        super().fit(train, val, cfg, metrics=metrics)
        self.meta.options["distill"] = {"temperature": cfg.distill_temperature, "alpha": cfg.distill_alpha}
        return self

    def _targets(self, rows: list[dict]) -> list[list[float]]:
        """Per row ``[p_neg, p_pos, gold or NO_LABEL]``; a gold-only row's one-hot label is its soft target.

        A row's own ``soft_label`` (one P(positive) shared by a group of counterfactual sentences,
        `sentitune data augment --scorer`) wins over the teacher's probability for that row alone:
        otherwise the student would learn the teacher's different scores for each identity term. Such
        a row's rounded label is not gold, so only the shared target trains it."""
        targets = []
        for row in rows:
            shared = row.get("soft_label")
            gold = float(row["label"]) if row.get("label") is not None and shared is None else NO_LABEL
            soft = [1.0 - shared, shared] if shared is not None else row.get("soft")
            if soft is None:
                if gold < 0:
                    raise ValueError("a distillation row needs `soft` or `label`")
                soft = [1.0 - gold, gold]
            targets.append([float(soft[0]), float(soft[1]), gold])
        return targets

    def _loss(self, cfg: TrainConfig, train: list[dict]):
        return distill_loss(cfg.distill_temperature, cfg.distill_alpha)

    def _scored(self, label_ids: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gold = label_ids[:, 2]
        keep = gold >= 0  # validation metrics score the rows with a gold label only
        return gold[keep].astype(int), proba[keep]
