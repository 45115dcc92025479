"""Classification and calibration metrics on plain arrays (labels 0/1, probabilities (n, 2))."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score


def reliability_bins(y_true, proba: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Equal-width bins of the predicted class's confidence (0.5-1: binary confidence is never lower)."""
    y_true = np.asarray(y_true)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = index == b
        out.append({
            "low": float(edges[b]), "high": float(edges[b + 1]), "count": int(mask.sum()),
            "accuracy": float(correct[mask].mean()) if mask.any() else None,
            "confidence": float(conf[mask].mean()) if mask.any() else None,
        })
    return out


def expected_calibration_error(y_true, proba: np.ndarray, n_bins: int = 10) -> float:
    """ECE: bin-weighted gap between accuracy and mean confidence."""
    n = len(proba)
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(y_true, proba, n_bins) if b["count"]))


def classification_metrics(y_true, proba) -> dict:
    """Accuracy, binary P/R/F1 (POSITIVE as the positive class), macro F1, ROC-AUC, ECE, confusion."""
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    y_pred = proba.argmax(axis=1)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", zero_division=0)
    _, _, macro_f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    out = {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
        "macro_f1": float(macro_f1),
        "ece": expected_calibration_error(y_true, proba),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
    }
    out["roc_auc"] = float(roc_auc_score(y_true, proba[:, 1])) if len(set(y_true.tolist())) == 2 else None
    return out
