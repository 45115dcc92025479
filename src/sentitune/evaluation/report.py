"""`sentitune evaluate`: every figure a user asks for, in metrics.json, predictions.csv, PNG charts
and one self-contained report.html (images embedded, readable offline)."""

from __future__ import annotations

import base64
import html
import json
import resource
import time
import tracemalloc
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

import sentitune
from sentitune.data import PrepareOptions, load_labelled
from sentitune.errors import DataError
from sentitune.evaluation import charts
from sentitune.evaluation.metrics import classification_metrics, reliability_bins

SUITE_PATH = Path(__file__).parent / "suite.jsonl"
MAX_SINGLE_CALLS = 300  # single-text latency is sampled: enough for p99, bounded for big files


def load_test_rows(path: str | Path) -> list[dict]:
    """Every row of a labelled file, or a DataError naming the row that cannot be evaluated."""
    rows, _ = load_labelled(path, PrepareOptions(), clean=False, strict=True)
    if not rows:
        raise DataError(f"{path} has no rows to evaluate")
    return rows


def suite_rows() -> list[dict]:
    rows, _ = load_labelled(SUITE_PATH, PrepareOptions(), source="suite", clean=False, strict=True)
    return rows


def _percentiles(values_ms: np.ndarray) -> dict:
    return {
        "mean_ms": float(values_ms.mean()), "p50_ms": float(np.percentile(values_ms, 50)),
        "p95_ms": float(np.percentile(values_ms, 95)), "p99_ms": float(np.percentile(values_ms, 99)),
    }


def measure(model, rows: list[dict], profile: bool = False) -> dict:
    """Predictions, metrics and latency of one model on rows (shared by evaluate and compare)."""
    texts = [r["text"] for r in rows]
    labels = np.array([r["label"] for r in rows])
    if profile:
        tracemalloc.start()
    start = time.perf_counter()
    proba = model.predict_proba(texts)
    batch_seconds = time.perf_counter() - start
    single_ms = []
    for text in texts[:MAX_SINGLE_CALLS]:
        t = time.perf_counter()
        model.predict_proba([text])
        single_ms.append(1000 * (time.perf_counter() - t))
    single_ms = np.array(single_ms)
    metrics = classification_metrics(labels, proba)
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == labels
    metrics["confidence"] = {
        "mean": float(conf.mean()), "median": float(np.median(conf)), "std": float(conf.std()),
        "min": float(conf.min()), "max": float(conf.max()),
    }
    buckets = {"> 0.8": conf > 0.8, "0.5-0.8": (conf >= 0.5) & (conf <= 0.8), "< 0.5": conf < 0.5}
    metrics["accuracy_by_confidence"] = {
        name: {"n": int(m.sum()), "accuracy": float(correct[m].mean()) if m.any() else None} for name, m in buckets.items()
    }
    metrics["reliability"] = reliability_bins(labels, proba)
    for key in ("source", "category"):
        groups: dict[str, list[bool]] = defaultdict(list)
        for row, ok in zip(rows, correct):
            if row.get(key):
                groups[row[key]].append(bool(ok))
        if groups:
            metrics[f"accuracy_by_{key}"] = {g: {"n": len(v), "accuracy": float(np.mean(v))} for g, v in sorted(groups.items())}
    metrics["accuracy_by_sentiment"] = {
        model.labels[c]: float(correct[labels == c].mean()) if (labels == c).any() else None for c in (0, 1)
    }
    metrics["latency"] = {
        "single": {**_percentiles(single_ms), "calls": len(single_ms)},
        "batched": {"texts": len(texts), "seconds": batch_seconds, "texts_per_s": len(texts) / batch_seconds,
                    "mean_ms_per_text": 1000 * batch_seconds / len(texts)},
    }
    if profile:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        metrics["memory"] = {"python_peak_mb": peak / 1e6,
                             "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    latency_col = np.full(len(texts), np.nan)
    latency_col[: len(single_ms)] = single_ms
    predictions = pd.DataFrame({
        "text": texts,
        "true_label": [model.labels[i] for i in labels],
        "predicted_label": [model.labels[i] for i in proba.argmax(axis=1)],
        "confidence": conf,
        "correct": correct,
        "latency_ms": latency_col,
        "source": [r.get("source", "") for r in rows],
        "category": [r.get("category", "") for r in rows],
    })
    return {"metrics": metrics, "predictions": predictions, "single_ms": single_ms}


def html_image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}"></figure>'


def html_table(headers: list[str], rows: list[list]) -> str:
    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f2f2f2}figure{display:inline-block;margin:0.5em}img{max-width:520px}
.big{font-size:1.4em}"""


def render_html(title: str, sections: list[tuple[str, str]]) -> str:
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"


def write_report(model, result: dict, out: Path, name: str, test_name: str, behaviour: dict | None = None) -> Path:
    m, pred = result["metrics"], result["predictions"]
    out.mkdir(parents=True, exist_ok=True)
    pred.to_csv(out / "predictions.csv", index=False)
    (out / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")
    correct = pred["correct"].to_numpy()
    pngs = [
        charts.accuracy_pie(int(correct.sum()), int((~correct).sum()), out / "accuracy_pie.png"),
        charts.distribution(dict(Counter(pred["true_label"])) | (dict(Counter(pred["source"])) if pred["source"].any() else {}),
                            out / "test_distribution.png", "Test cases by label and source"),
        charts.grouped_accuracy({k: v for k, v in m["accuracy_by_sentiment"].items() if v is not None},
                                out / "accuracy_by_sentiment.png", "Accuracy by sentiment"),
        charts.latency_histogram(result["single_ms"], out / "latency.png"),
        charts.cumulative_accuracy(correct, out / "cumulative_accuracy.png"),
        charts.confusion(m["confusion_matrix"], model.labels, out / "confusion_matrix.png"),
        charts.reliability(m["reliability"], m["ece"], out / "reliability.png"),
    ]
    for key in ("source", "category"):
        if f"accuracy_by_{key}" in m:
            pngs.append(charts.grouped_accuracy({g: v["accuracy"] for g, v in m[f"accuracy_by_{key}"].items()},
                                                out / f"accuracy_by_{key}.png", f"Accuracy by {key}"))
    meta = model.meta
    lat = m["latency"]
    errors = pred[~pred["correct"]].sort_values("confidence", ascending=False)
    error_html = ""
    for category, group in errors.groupby(errors["category"].replace("", "(none)"), sort=True):
        rows = [[r.text[:300], r.true_label, r.predicted_label, r.confidence] for r in group.head(25).itertuples()]
        error_html += f"<h3>{html.escape(str(category))}: {len(group)} wrong</h3>" + html_table(["text", "true", "predicted", "confidence"], rows)
    sections = [
        ("Summary", f"<p class='big'>accuracy <b>{m['accuracy']:.4f}</b> on {m['n']} rows of {html.escape(test_name)}</p>"
         + html_table(["model", "method", "base model", "temperature", "evaluated"],
                  [[name, meta.method, meta.base_model or "-", meta.temperature, datetime.now().isoformat(timespec="seconds")]])),
        ("Metrics", html_table(["accuracy", "precision", "recall", "F1", "macro F1", "ROC-AUC", "ECE"],
                           [[m["accuracy"], m["precision"], m["recall"], m["f1"], m["macro_f1"], m["roc_auc"] or "-", m["ece"]]])),
        ("Confidence", html_table(["mean", "median", "std", "min", "max"], [list(m["confidence"].values())])
         + html_table(["confidence bucket", "rows", "accuracy"],
                  [[k, v["n"], v["accuracy"] if v["accuracy"] is not None else "-"] for k, v in m["accuracy_by_confidence"].items()])),
        ("Latency", html_table(["", "mean ms", "p50 ms", "p95 ms", "p99 ms", "texts/s"],
                           [["single text", lat["single"]["mean_ms"], lat["single"]["p50_ms"], lat["single"]["p95_ms"],
                             lat["single"]["p99_ms"], 1000 / lat["single"]["mean_ms"]],
                            ["batched", lat["batched"]["mean_ms_per_text"], "-", "-", "-", lat["batched"]["texts_per_s"]]])
         + (html_table(["python peak MB", "max RSS MB"], [list(m["memory"].values())]) if "memory" in m else "")),
    ]
    for key in ("source", "category"):
        if f"accuracy_by_{key}" in m:
            sections.append((f"Accuracy by {key}", html_table([key, "rows", "accuracy"],
                                                          [[g, v["n"], v["accuracy"]] for g, v in m[f"accuracy_by_{key}"].items()])))
    sections.append(("Charts", "".join(html_image(p) for p in pngs)))
    sections.append(("Errors, most confident first", error_html or "<p>none</p>"))
    if behaviour is not None:  # `evaluate --behaviour`: results in behaviour.json and one section
        from sentitune.evaluation.behaviour import behaviour_html

        (out / "behaviour.json").write_text(json.dumps(behaviour, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        sections.append(("Behaviour tests", behaviour_html(behaviour)))
    path = out / "report.html"
    path.write_text(render_html(f"sentitune evaluation: {name}", sections), encoding="utf-8")
    return path


def run_evaluation(model_path, test_file, report_dir=None, suite: bool = False, profile: bool = False,
                   behaviour: bool = False, behaviour_file=None) -> dict:
    model = sentitune.load(model_path)
    rows = suite_rows() if suite else load_test_rows(test_file)
    name = Path(model_path).name if model_path else "default model"
    out = Path(report_dir) if report_dir else Path("reports") / f"{name.replace(' ', '-')}-{datetime.now():%Y%m%d-%H%M%S}"
    behaviour_results = None
    if behaviour:  # first: a bad --behaviour-file fails before the long part
        from sentitune.evaluation.behaviour import run_behaviour

        behaviour_results = run_behaviour(model, extra_file=behaviour_file)
    result = measure(model, rows, profile=profile)
    write_report(model, result, out, name, "the curated suite" if suite else str(test_file), behaviour_results)
    return {"metrics": result["metrics"], "report_dir": str(out), "behaviour": behaviour_results}
