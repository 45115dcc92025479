"""Temperature scaling: one scalar T so that softmax(logits / T) is calibrated (Guo et al., 2017)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def fit_temperature(logits, labels, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature minimising validation NLL; searched on log T so both directions are even."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    res = minimize_scalar(
        lambda log_t: _nll(logits, labels, float(np.exp(log_t))),
        bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded",
    )
    return float(np.exp(res.x))


def calibrate_artifact(model_path, val_file, record: bool = False) -> tuple[float, float, float]:
    """Fit T on a labelled validation file, store it in sentitune.json; return (ECE before, after, T).
    ``record``: also store the calibrated model's metrics on that file as its validation metrics."""
    import sentitune
    from sentitune.artifact import record_metrics, update_meta
    from sentitune.evaluation.metrics import classification_metrics, expected_calibration_error
    from sentitune.evaluation.report import load_test_rows
    from sentitune.methods.base import softmax

    model = sentitune.load(model_path)
    rows = load_test_rows(val_file)
    labels = np.array([r["label"] for r in rows])
    logits = np.asarray(model.logits([r["text"] for r in rows]), dtype=np.float64)
    before = expected_calibration_error(labels, softmax(logits / model.temperature))
    temperature = fit_temperature(logits, labels)
    after = expected_calibration_error(labels, softmax(logits / temperature))
    path = model_path if model_path else sentitune.DEFAULT_MODEL_PATH
    update_meta(path, temperature=temperature)
    if record:
        record_metrics(path, val=classification_metrics(labels, softmax(logits / temperature)))
    return before, after, temperature
