"""The report's charts as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

GREEN, RED, BLUE, GREY = "#2e7d32", "#c62828", "#1565c0", "#9e9e9e"


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def accuracy_pie(correct: int, wrong: int, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.pie([correct, wrong], labels=[f"correct ({correct})", f"wrong ({wrong})"], colors=[GREEN, RED],
           autopct="%1.1f%%", startangle=90)
    ax.set_title("Overall accuracy")
    return _save(fig, path)


def distribution(counts: dict[str, int], path: Path, title: str = "Test cases") -> Path:
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.35 * len(counts) + 1)))
    names = list(counts)
    ax.barh(names, [counts[n] for n in names], color=BLUE)
    ax.invert_yaxis()
    ax.set_xlabel("rows")
    ax.set_title(title)
    return _save(fig, path)


def grouped_accuracy(acc: dict[str, float], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, max(2.5, 0.35 * len(acc) + 1)))
    names = list(acc)
    values = [acc[n] for n in names]
    ax.barh(names, values, color=[GREEN if v >= 0.8 else RED for v in values])
    for i, v in enumerate(values):
        ax.text(min(v + 0.01, 0.93), i, f"{v:.3f}", va="center")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy")
    ax.set_title(title)
    return _save(fig, path)


def latency_histogram(latencies_ms: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(latencies_ms, bins=40, color=BLUE)
    for q, style in ((50, "--"), (95, ":")):
        v = float(np.percentile(latencies_ms, q))
        ax.axvline(v, color="black", linestyle=style, label=f"p{q} {v:.1f} ms")
    ax.set_xlabel("latency per single-text call (ms)")
    ax.set_ylabel("calls")
    ax.legend()
    ax.set_title("Latency distribution")
    return _save(fig, path)


def cumulative_accuracy(correct: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    running = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    ax.plot(np.arange(1, len(correct) + 1), running, color=BLUE)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("test cases (file order)")
    ax.set_ylabel("accuracy so far")
    ax.set_title("Cumulative accuracy")
    return _save(fig, path)


def confusion(cm: list[list[int]], labels: tuple[str, ...], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    arr = np.asarray(cm)
    ax.imshow(arr, cmap="Blues")
    for (i, j), v in np.ndenumerate(arr):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > arr.max() / 2 else "black")
    ax.set_xticks([0, 1], labels)
    ax.set_yticks([0, 1], labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    return _save(fig, path)


def reliability(bins: list[dict], ece: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    mids = [(b["low"] + b["high"]) / 2 for b in bins if b["count"]]
    acc = [b["accuracy"] for b in bins if b["count"]]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.05
    ax.bar(mids, acc, width=width * 0.9, color=BLUE, label="accuracy")
    ax.plot([0.5, 1], [0.5, 1], color=GREY, linestyle="--", label="perfect calibration")
    ax.set_xlim(0.5, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    return _save(fig, path)


def grouped_bars(table: dict[str, dict[str, float]], metric_names: list[str], path: Path, title: str) -> Path:
    """Models side by side per metric (compare reports)."""
    models = list(table)
    x = np.arange(len(metric_names))
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(metric_names)), 4))
    for k, model in enumerate(models):
        ax.bar(x + k * width, [table[model][m] for m in metric_names], width, label=model)
    ax.set_xticks(x + width * (len(models) - 1) / 2, metric_names)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)
