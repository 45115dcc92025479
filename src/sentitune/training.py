"""`sentitune train`: load data, fit any method, calibrate, record metrics, save the artifact.

The pipeline sits above methods/ and evaluation/ (it uses both), so it lives at the top of the
package beside the CLI rather than inside methods/.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from sentitune.config import TrainConfig
from sentitune.data import PrepareOptions, load_labelled, read_texts, sample_path
from sentitune.errors import DataError
from sentitune.evaluation.calibration import fit_temperature
from sentitune.evaluation.metrics import classification_metrics
from sentitune.methods import get_method
from sentitune.methods.base import softmax


def load_rows(path: str | Path) -> list[dict]:
    """Labelled rows from any supported file, as given (no cleaning: prepared files are clean already)."""
    rows, _ = load_labelled(path, PrepareOptions(), clean=False)
    if not rows:
        raise DataError(f"{path} has no labelled rows")
    return rows


def training_data(cfg: TrainConfig) -> tuple[list[dict], list[dict] | None]:
    if cfg.train_file is None:  # the bundled sample: works on a clean clone with no data at hand
        train, val = load_rows(sample_path("train")), load_rows(sample_path("val"))
    else:
        train = load_rows(cfg.train_file)
        val = load_rows(cfg.val_file) if cfg.val_file else None
    if cfg.max_train_samples and len(train) > cfg.max_train_samples:
        rng = np.random.default_rng(cfg.seed)
        train = [train[i] for i in sorted(rng.choice(len(train), cfg.max_train_samples, replace=False))]
    return train, val


def with_teacher_labels(train: list[dict], cfg: TrainConfig) -> tuple[list[dict], dict]:
    """Training rows plus the unlabeled pool, each with the teacher's probabilities as ``soft``.

    Loading the teacher needs ``sentitune.load`` (above methods/), so it happens here; the student
    method only sees rows with soft labels."""
    import sentitune
    from sentitune.methods.distill import teacher_digest, teacher_soft_labels

    if not cfg.teacher:
        raise DataError("--method distill needs --teacher DIR (any sentitune model directory)")
    teacher = sentitune.load(cfg.teacher)
    pool = [{"text": t, "source": f"unlabeled:{Path(f).name}"}  # the model card counts training rows by source
            for f in cfg.unlabeled for t in read_texts(f) if isinstance(t, str) and t.strip()]
    rows = [dict(r) for r in train] + pool
    soft = teacher_soft_labels(teacher, [r["text"] for r in rows])
    for row, p in zip(rows, soft):
        row["soft"] = p.tolist()
    record = {"path": str(cfg.teacher), "method": teacher.meta.method, "base_model": teacher.meta.base_model,
              "digest": teacher_digest(teacher), "unlabeled_rows": len(pool)}
    return rows, record


def run_training(cfg: TrainConfig) -> Path:
    train, val = training_data(cfg)
    # Seed before the method builds anything: a new classification head and LoRA's initial weights
    # are drawn when the model is created, before the Trainer would seed.
    from transformers import set_seed

    set_seed(cfg.seed)
    teacher_record = None
    if cfg.method == "distill":
        train, teacher_record = with_teacher_labels(train, cfg)
    model = get_method(cfg.method)()
    model.fit(train, val, cfg, metrics=classification_metrics)  # metrics rank the checkpoints
    if teacher_record:
        model.meta.training["teacher"] = teacher_record
    model.meta.training.update(
        {
            "train_rows": len(train),
            "val_rows": len(val) if val else 0,
            "train_sources": dict(Counter(r.get("source", "unknown") for r in train)),
            "train_file": cfg.train_file or "bundled sample",
            "config": cfg.model_dump(exclude={"model_sizes"}),
        }
    )
    if val:
        texts, labels = [r["text"] for r in val], np.array([r["label"] for r in val])
        logits = np.asarray(model.logits(texts), dtype=np.float64)
        if cfg.calibrate:
            model.meta.temperature = fit_temperature(logits, labels)
        model.meta.metrics["val"] = classification_metrics(labels, softmax(logits / model.meta.temperature))
    return model.save(cfg.output_dir)
