"""`sentitune compare`: several models, the same data, one side-by-side report."""

from __future__ import annotations

import json
from pathlib import Path

import sentitune
from sentitune.atomic import atomic_write_text
from sentitune.evaluation import charts
from sentitune.evaluation.report import html_image, html_table, load_test_rows, measure, render_html


def artifact_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "checkpoints" not in f.parts) / 1e6


def run_comparison(model_paths: list[str], test_file, report_dir) -> Path:
    rows = load_test_rows(test_file)
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict[str, float]] = {}
    for path in model_paths:
        model = sentitune.load(path)
        m = measure(model, rows)["metrics"]
        name = Path(path).name
        if name in table:  # same directory name in two places
            name = str(path)
        table[name] = {
            "method": model.meta.method,
            "accuracy": m["accuracy"], "f1": m["f1"], "ece": m["ece"],
            "p50_ms": m["latency"]["single"]["p50_ms"], "texts_per_s": m["latency"]["batched"]["texts_per_s"],
            "size_mb": artifact_mb(Path(path)),
        }
        table[name].update({f"acc:{s}": v["accuracy"] for s, v in m.get("accuracy_by_source", {}).items()})
    atomic_write_text(out / "comparison.json", json.dumps(table, indent=2) + "\n")
    pngs = [
        charts.grouped_bars(table, ["accuracy", "f1", "ece"], out / "quality.png", "Quality (higher accuracy/F1, lower ECE)"),
        charts.grouped_bars(table, ["p50_ms"], out / "latency.png", "Single-text p50 latency (ms)"),
        charts.grouped_bars(table, ["texts_per_s"], out / "throughput.png", "Batched throughput (texts/s)"),
    ]
    sources = sorted({k for v in table.values() for k in v if k.startswith("acc:")})
    if sources:
        pngs.append(charts.grouped_bars({n: {s[4:]: v.get(s, 0.0) for s in sources} for n, v in table.items()},
                                        [s[4:] for s in sources], out / "per_source.png", "Accuracy by source"))
    headers = ["model", "method", "accuracy", "F1", "ECE", "p50 ms", "texts/s", "size MB"]
    body = html_table(headers, [[n, v["method"], v["accuracy"], v["f1"], v["ece"], v["p50_ms"], v["texts_per_s"], v["size_mb"]]
                                for n, v in table.items()])
    if sources:
        body += html_table(["model"] + [s[4:] for s in sources], [[n] + [v.get(s, "-") for s in sources] for n, v in table.items()])
    page = render_html(f"sentitune comparison on {Path(test_file).name} ({len(rows)} rows)",
                       [("Side by side", body), ("Charts", "".join(html_image(p) for p in pngs))])
    report = out / "report.html"
    atomic_write_text(report, page)
    return report
