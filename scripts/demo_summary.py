"""The last step of `make demo`: the model it just trained beside the shipped presets, one table.

    python scripts/demo_summary.py runs/demo

Reads DEMO/data/test.jsonl and the trained model's report (DEMO/report, written by `sentitune
evaluate` just before); evaluates each preset this install ships (`sentitune.presets`: "default",
"fast") on the same split into DEMO/report-NAME, behaviour section included; runs the behaviour
suite (sentitune.evaluation.behaviour) on every model. Columns: accuracy, the behaviour suite's
mean failure rate over its tests, batched texts/s, and where each report is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

import sentitune
from sentitune.errors import SentituneError
from sentitune.evaluation.behaviour import run_behaviour
from sentitune.evaluation.report import load_test_rows, measure, write_report
from sentitune.presets import PRESETS


def row(name: str, accuracy: float, behaviour: dict, texts_per_s: float, report: Path) -> dict:
    return {"model": name, "accuracy": accuracy, "behaviour_failure_rate": behaviour["mean_failure_rate"],
            "texts_per_s": texts_per_s, "report": str(report / "report.html")}


def trained_row(demo: Path) -> dict:
    """The trained model: test figures from the report `sentitune evaluate` wrote, behaviour run here."""
    metrics_file = demo / "report" / "metrics.json"
    if not metrics_file.is_file():
        raise SentituneError(f"{metrics_file} not found: run `sentitune evaluate --report-dir {demo / 'report'}` first")
    m = json.loads(metrics_file.read_text())
    behaviour = run_behaviour(sentitune.load(demo / "model"))
    return row(f"trained ({demo / 'model'})", m["accuracy"], behaviour, m["latency"]["batched"]["texts_per_s"], demo / "report")


def preset_row(name: str, path: Path, rows: list[dict], test_file: Path, out: Path) -> dict:
    """A shipped preset evaluated as `evaluate --behaviour` would, into its own report."""
    model = sentitune.load(path)
    behaviour = run_behaviour(model)
    result = measure(model, rows)
    write_report(model, result, out, name, str(test_file), behaviour)
    m = result["metrics"]
    return row(f"preset {name}", m["accuracy"], behaviour, m["latency"]["batched"]["texts_per_s"], out)


def summary_table(rows: list[dict]) -> Table:
    table = Table(title="make demo: the same test split, every model")
    for column in ("model", "accuracy", "behaviour failure rate", "texts/s"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in rows:
        table.add_row(r["model"], f"{r['accuracy']:.3f}", f"{r['behaviour_failure_rate']:.3f}", f"{r['texts_per_s']:,.0f}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="The demo directory (data/, model/, report/ inside)")
    demo = parser.parse_args(argv).demo
    try:
        test_file = demo / "data" / "test.jsonl"
        test_rows = load_test_rows(test_file)
        rows = [trained_row(demo)] + [
            preset_row(name, path, test_rows, test_file, demo / f"report-{name}")
            for name, path in PRESETS.items() if (path / "sentitune.json").is_file()
        ]
    except SentituneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (demo / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    console = Console(width=max(Console().width, 100))
    console.print(summary_table(rows))
    for r in rows:
        console.print(f"{r['model']}: {r['report']}", highlight=False, soft_wrap=True)
    console.print(f"these figures: {demo / 'summary.json'}", highlight=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
