"""`sentitune train`: load data, fit any method, calibrate, record metrics, save the artifact.

The pipeline sits above methods/ and evaluation/ (it uses both), so it lives at the top of the
package beside the CLI rather than inside methods/.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from sentitune.config import TrainConfig
from sentitune.data import PrepareOptions, load_labelled, sample_path
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


def run_training(cfg: TrainConfig) -> Path:
    train, val = training_data(cfg)
    # Seed before the method builds anything: a new classification head and LoRA's initial weights
    # are drawn when the model is created, before the Trainer would seed.
    from transformers import set_seed

    set_seed(cfg.seed)
    model = get_method(cfg.method)()
    model.fit(train, val, cfg, metrics=classification_metrics)  # metrics rank the checkpoints
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
