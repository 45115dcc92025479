"""Batch scoring of large files: streamed and resumable on one machine, or a Ray Data pipeline.

    sentitune score reviews.parquet scored.parquet --model-path D [--engine local|ray]

Both engines read what ``sentitune.data.io`` reads (CSV/TSV, JSONL(.gz), Parquet, text lines, a
datasets directory; a file or a directory of them) by its rules for types and missing values
(the Ray read tasks run the same reader), keep every input column and add ``label``,
``confidence`` and ``error``. A row whose text is missing, empty or not a string keeps its place
with an ``error`` and no label: nothing is dropped.

``local`` reads ``chunk_rows`` rows at a time (memory stays bounded whatever the file size) and
writes each scored chunk as a part file under ``OUTPUT.parts/`` before moving on; run the same
command again after a crash and the finished chunks are skipped. The parts are merged into OUTPUT
at the end. ``ray`` runs the same scoring function in ``map_batches`` on a pool of actors (one model
per actor), on a local Ray started by the command or the cluster named by ``RAY_ADDRESS``.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from sentitune.atomic import atomic_write, atomic_write_text
from sentitune.data.io import iter_file, table_files
from sentitune.errors import DataError, SentituneError
from sentitune.methods.base import text_problem

OUTPUT_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".csv")
ADDED = ("label", "confidence", "error")


# ------------------------------------------------------------------------------------ scoring
def text_error(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing text"
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    # the predictor's own check (blank, invisible-only, not UTF-8), so no row it would refuse gets
    # through to fail the whole chunk
    problem = text_problem(value)
    if problem == "is empty":
        return "empty text"
    return f"text {problem}" if problem else None


def score_frame(model, frame: pd.DataFrame, text_column: str, id_column: str | None = None) -> pd.DataFrame:
    """The input rows plus ``label``, ``confidence`` and ``error``; the one function both engines run."""
    for column, flag in ((text_column, "--text-column"), (id_column, "--id-column")):
        if column is not None and column not in frame.columns:
            raise DataError(f"input has no column {column!r} for {flag} (columns: {', '.join(map(str, frame.columns))})")
    if id_column is not None:  # the id first, where people look for it
        frame = frame[[id_column] + [c for c in frame.columns if c != id_column]]
    out = frame.rename(columns={c: f"{c}_input" for c in ADDED if c in frame.columns}).reset_index(drop=True)
    texts = out[text_column].tolist()
    errors = [text_error(t) for t in texts]
    valid = [i for i, e in enumerate(errors) if e is None]
    labels: list[str | None] = [None] * len(texts)
    confidence = np.full(len(texts), np.nan)
    if valid:
        proba = model.predict_proba([texts[i] for i in valid])
        best = proba.argmax(axis=1)
        for j, i in enumerate(valid):
            labels[i] = model.labels[best[j]]
        confidence[valid] = proba[np.arange(len(valid)), best]
    for column in out.columns[out.dtypes == object]:
        out[column] = _uniform(out[column])
    out["label"] = pd.Series(labels, dtype="object")
    out["confidence"] = confidence
    out["error"] = pd.Series(errors, dtype="object")
    return out


def _uniform(values: pd.Series) -> pd.Series:
    """A column mixing strings with numbers (JSON, CSV) cannot go to Parquet: such values become strings."""
    kinds = {type(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))}
    if str in kinds and len(kinds) > 1:
        return values.map(lambda v: v if v is None or isinstance(v, (str, float)) and (isinstance(v, str) or math.isnan(v)) else str(v))
    return values


def load_scorer(model_path: str | Path | None, batch_size: int | None):
    import sentitune

    model = sentitune.load(model_path)
    if batch_size and model.capabilities.batch_size:
        model.batch_size = batch_size
    return model


# ------------------------------------------------------------------------------------ reading
# Both engines read through sentitune.data.io (the reader `predict --file`, `evaluate` and `data
# prepare` use too): one file gives the same rows, strings and missing values on every path.
def input_files(path: str | Path) -> list[Path]:
    return table_files(path)


def ray_dataset(inputs: list[Path], chunk_rows: int):
    """A Ray Dataset of the inputs, one read task per file, each running ``iter_file``."""
    import ray
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    def metadata(path: Path) -> BlockMetadata:
        size = _size(path)
        try:
            return BlockMetadata(num_rows=None, size_bytes=size, input_files=[str(path)], exec_stats=None)
        except TypeError:  # older Ray also wants the schema here
            return BlockMetadata(num_rows=None, size_bytes=size, schema=None, input_files=[str(path)], exec_stats=None)

    class TableDatasource(Datasource):
        def estimate_inmemory_data_size(self) -> int:
            return sum(_size(p) for p in inputs)

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list:
            return [ReadTask(lambda p=p: iter_file(p, chunk_rows), metadata(p)) for p in inputs]

    return ray.data.read_datasource(TableDatasource())


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


# ------------------------------------------------------------------------------------ writing
class OutputWriter:
    """Appends frames to one Parquet, JSONL(.gz) or CSV file (by suffix), through ``atomic_write``:
    OUTPUT appears only on ``close``, so a half-written OUTPUT never looks finished; ``abort``
    removes the temporary file."""

    def __init__(self, path: Path):
        self.path = path
        self._files = ExitStack()
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._text = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        name = self.path.name
        if name.endswith(".parquet"):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._schema is None:
                fixed = {"label": pa.string(), "confidence": pa.float64(), "error": pa.string()}
                # a column empty in the first chunk has Arrow type null; later chunks hold strings
                self._schema = pa.schema([
                    pa.field(f.name, fixed.get(f.name, pa.string() if pa.types.is_null(f.type) else f.type))
                    for f in table.schema
                ])
                self._parquet = pq.ParquetWriter(self._files.enter_context(atomic_write(self.path, "wb")), self._schema)
            self._parquet.write_table(table.cast(self._schema))
        else:
            if self._text is None:
                if name.endswith(".gz"):
                    raw = self._files.enter_context(atomic_write(self.path, "wb"))
                    self._text = self._files.enter_context(gzip.open(raw, "wt", encoding="utf-8"))
                else:
                    self._text = self._files.enter_context(atomic_write(self.path))
            if name.endswith(".csv"):
                frame.to_csv(self._text, index=False, header=self.rows == 0)
            else:
                for record in frame.to_dict(orient="records"):
                    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
                    self._text.write(json.dumps(clean, ensure_ascii=False, default=str) + "\n")
        self.rows += len(frame)

    def close(self) -> None:
        if self.rows == 0:
            self.abort()
            raise DataError("the input has no rows")
        if self._parquet is not None:
            self._parquet.close()
        self._files.close()

    def abort(self) -> None:
        stop = SentituneError("output abandoned")
        self._files.__exit__(type(stop), stop, None)  # atomic_write removes its temporary file


# ------------------------------------------------------------------------------------ engines
def _summary(rows: int, errors: int, seconds: float, output: Path, **extra: Any) -> dict:
    return {
        "rows": rows, "scored": rows - errors, "errors": errors, "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds, 1) if seconds > 0 else None, "output": str(output), **extra,
    }


def score_local(
    inputs: list[Path], output: Path, model_path, text_column: str, id_column: str | None, batch_size: int | None,
    chunk_rows: int,
) -> dict:
    parts = output.with_name(output.name + ".parts")
    manifest = {
        "inputs": [str(p.resolve()) for p in inputs], "text_column": text_column, "id_column": id_column,
        "chunk_rows": chunk_rows,
        "model_path": str(Path(model_path).resolve()) if model_path else None,
    }
    manifest_file = parts / "manifest.json"
    if manifest_file.exists() and json.loads(manifest_file.read_text()) != manifest:
        raise SentituneError(
            f"{parts} holds parts of a run with other arguments; rerun with those or delete {parts}"
        )
    parts.mkdir(parents=True, exist_ok=True)
    atomic_write_text(manifest_file, json.dumps(manifest, indent=2))

    start = time.perf_counter()
    model = None
    rows = errors = resumed = 0
    index = 0
    with tqdm(desc="scoring", unit="rows") as bar:
        for path in inputs:
            for frame in iter_file(path, chunk_rows):
                part = parts / f"part-{index:06d}.parquet"
                index += 1
                if part.exists():  # finished before the restart
                    done = pq.read_table(part, columns=["error"]).column("error")
                    rows += len(done)
                    errors += len(done) - done.null_count
                    resumed += 1
                    bar.update(len(done))
                    continue
                if model is None:
                    model = load_scorer(model_path, batch_size)
                scored = score_frame(model, frame, text_column, id_column)
                with atomic_write(part, "wb") as handle:  # a part exists only once it is complete
                    pq.write_table(pa.Table.from_pandas(scored, preserve_index=False), handle)
                rows += len(scored)
                errors += int(scored["error"].notna().sum())
                bar.update(len(scored))

    writer = OutputWriter(output)
    try:
        for k in range(index):
            writer.write(pq.read_table(parts / f"part-{k:06d}.parquet").to_pandas())
    except BaseException:
        writer.abort()
        raise
    writer.close()
    shutil.rmtree(parts)
    return _summary(rows, errors, time.perf_counter() - start, output, engine="local", resumed_chunks=resumed)


class _RayScorer:
    """One model per Ray actor; ``__call__`` scores one pandas batch."""

    def __init__(self, model_path, text_column: str, id_column: str | None, batch_size: int | None, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.model = load_scorer(model_path, batch_size)
        self.text_column, self.id_column = text_column, id_column

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return score_frame(self.model, batch, self.text_column, self.id_column)


def score_ray(
    inputs: list[Path], output: Path, model_path, text_column: str, id_column: str | None, batch_size: int | None,
    chunk_rows: int, workers: int | None,
) -> dict:
    try:
        import ray
    except ImportError:
        raise SentituneError("--engine ray needs Ray: pip install 'sentitune[scale]'") from None

    start = time.perf_counter()
    # RAY_ADDRESS set: join that cluster; otherwise start a local Ray for this command only
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = float(resources.get("CPU", 1))
        workers = workers or gpus or max(1, int(cpus))
        if gpus:
            per_actor, threads = {"num_gpus": 1}, max(1, int(cpus) // workers)
        else:
            # actors that reserved every CPU would starve the read tasks feeding them (a deadlock):
            # keep one logical CPU free for reading; each actor still runs one torch thread
            per_actor, threads = {"num_cpus": max(0.1, min(1.0, (cpus - 1) / workers))}, 1

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # our own progress bar says enough
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # output rows in input order, as the local engine
        ds = ray_dataset(inputs, chunk_rows)
        # a file is read as few large blocks, and one block feeds one actor: re-cut into blocks of
        # `batch_rows` so every actor gets work (the cut is streamed and keeps the order)
        batch_rows = min(chunk_rows, 1024)
        ds = ds.repartition(target_num_rows_per_block=batch_rows).map_batches(
            _RayScorer,
            fn_constructor_kwargs={
                "model_path": model_path, "text_column": text_column, "id_column": id_column,
                "batch_size": batch_size, "threads": threads,
            },
            batch_size=batch_rows,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=workers),
            **per_actor,
        )
        writer = OutputWriter(output)
        rows = errors = 0
        first_batch = None  # Ray, the actors and their models, and the first scored block
        try:
            with tqdm(desc=f"scoring on Ray ({workers} workers)", unit="rows") as bar:
                for frame in ds.iter_batches(batch_format="pandas", batch_size=None):
                    first_batch = first_batch or time.perf_counter() - start
                    writer.write(frame)
                    rows += len(frame)
                    errors += int(frame["error"].notna().sum())
                    bar.update(len(frame))
        except BaseException:
            writer.abort()
            raise
        writer.close()
    except ray.exceptions.RayTaskError as exc:  # a user error inside a worker (say, a missing column)
        cause = exc.cause if isinstance(getattr(exc, "cause", None), SentituneError) else None
        if cause is not None:
            raise cause from None
        raise
    finally:
        if started_here:
            ray.shutdown()
    return _summary(
        rows, errors, time.perf_counter() - start, output, engine="ray", workers=workers,
        first_batch_s=round(first_batch or 0.0, 2),
    )


def run_scoring(
    input: str | Path,
    output: str | Path,
    model_path: str | Path | None = None,
    engine: str = "local",
    text_column: str = "text",
    id_column: str | None = None,
    batch_size: int | None = None,
    chunk_rows: int = 10_000,
    workers: int | None = None,
) -> dict:
    """Score INPUT into OUTPUT; return a summary (rows, scored, errors, seconds, rows/s)."""
    inputs = input_files(input)
    output = Path(output)
    if not output.name.endswith(OUTPUT_SUFFIXES):
        raise SentituneError(f"cannot write {output.name}: OUTPUT must end in {', '.join(OUTPUT_SUFFIXES)}")
    if model_path is not None:
        from sentitune.artifact import read_meta

        read_meta(model_path)  # fail now, not in a worker after the input has been read
    if engine == "local":
        return score_local(inputs, output, model_path, text_column, id_column, batch_size, chunk_rows)
    if engine == "ray":
        return score_ray(inputs, output, model_path, text_column, id_column, batch_size, chunk_rows, workers)
    raise SentituneError(f"unknown --engine {engine!r}: choose local or ray")
