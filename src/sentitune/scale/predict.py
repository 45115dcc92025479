"""`sentitune predict`, streamed: texts, a file or standard input read, scored and written chunk by chunk.

Memory stays bounded by ``chunk_rows`` whatever the input size, and each chunk's results are written
(and flushed) before the next is read, so a pipe sees answers as it feeds lines. Rows come from
``sentitune.data.io`` with the same rules ``score`` uses; a row whose text is missing, empty or not
a string is kept, with no label and an ``error`` naming the problem, exactly as ``score`` keeps it.
"""

from __future__ import annotations

import csv
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import IO, BinaryIO, Iterator

import pandas as pd

from sentitune.data.io import TEXT_COLUMNS, find_column, iter_lines, iter_table
from sentitune.errors import SentituneError
from sentitune.scale.score import text_error

FORMATS = ("table", "jsonl", "csv")
STDIN = "-"


def output_format(fmt: str | None, as_json: bool, output: Path | None) -> str:
    """``--format``, or what ``--json`` / the --output suffix imply (table on a terminal)."""
    if as_json:
        if fmt not in (None, "jsonl"):
            raise SentituneError(f"--json means --format jsonl; it cannot go with --format {fmt}")
        return "jsonl"
    if fmt is None:
        if output is None:
            return "table"
        return {".csv": "csv", ".tsv": "table", ".txt": "table"}.get(output.suffix.lower(), "jsonl")
    if fmt not in FORMATS:
        raise SentituneError(f"unknown --format {fmt!r}: choose {', '.join(FORMATS)}")
    return fmt


def input_chunks(
    texts: list[str], file: str | None, stdin: BinaryIO | None, chunk_rows: int
) -> Iterator[tuple[pd.DataFrame, str]]:
    """(frame, where) pairs: the TEXT arguments, then --file (``-``: stdin), or stdin alone."""
    if texts:
        yield pd.DataFrame({"text": texts}), "arguments"
    if file == STDIN or (file is None and not texts and stdin is not None):
        for frame in iter_lines(stdin, chunk_rows):
            yield frame, "standard input"
    elif file is not None:
        for frame in iter_table(file, chunk_rows):
            yield frame, str(file)


def records_for(model, values: list, explain: bool = False) -> list[dict]:
    """One record per value, in order: the model's record, or ``label`` None and an ``error``."""
    errors = [text_error(v) for v in values]
    valid = [v for v, e in zip(values, errors) if e is None]
    done = model.predict_records(valid) if valid else []
    if explain and valid:
        for record, why in zip(done, model.explain(valid, [r["label"] for r in done])):
            record["explanation"] = why
    scored = iter(done)
    return [
        next(scored) if e is None
        else {"text": v if isinstance(v, (str, int, float)) and v == v else None,
              "label": None, "confidence": None, "probabilities": None, "error": e}
        for v, e in zip(values, errors)
    ]


class RecordWriter:
    """Writes records as tab-separated lines (table), JSON Lines or CSV, flushing every chunk."""

    def __init__(self, handle: IO[str], fmt: str, explain: bool):
        self.handle, self.fmt = handle, fmt
        self.columns = ["text", "label", "confidence", "error"] + (["explanation"] if explain else [])
        self._csv = csv.writer(handle, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(self.columns)

    def write(self, records: list[dict]) -> None:
        if self._csv is not None:
            self._csv.writerows([[_cell(r.get(c)) for c in self.columns] for r in records])
        elif self.fmt == "jsonl":
            self.handle.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
        else:
            self.handle.writelines(_table_line(r) + "\n" for r in records)
        self.handle.flush()


def _cell(value) -> str:
    return "" if value is None else f"{value:.6f}" if isinstance(value, float) else str(value)


def _table_line(record: dict) -> str:
    if record.get("error"):
        return f"-\t-\t({record['error']})"
    return f"{record['label']}\t{record['confidence']:.3f}\t{record['text']}"


def run_predict(
    model_path, texts: list[str], file: str | None, text_column: str | None, fmt: str,
    output: Path | None = None, stdin: BinaryIO | None = None, chunk_rows: int = 1000,
    stdout: IO[str] | None = None,
) -> dict:
    """Classify every input row into ``output`` (written atomically) or ``stdout``; return a summary.

    TEXT arguments are checked up front (an empty one is an error); rows of a file or stdin are
    kept with an ``error`` instead. Summary: rows, errors, first_error, output.
    """
    import sentitune
    from sentitune.atomic import atomic_write
    from sentitune.methods.base import check_texts

    if chunk_rows < 1:
        raise SentituneError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    texts = check_texts(texts) if texts else []
    model = sentitune.load(model_path)
    explain = fmt != "table" and bool(model.meta.options.get("reasoning")) and model.capabilities.explain
    summary = {"rows": 0, "errors": 0, "first_error": None, "output": str(output) if output else None}
    rows_of: dict[str, int] = {}  # rows read so far from each source, to name the row of an error
    with atomic_write(output) if output else nullcontext(stdout or sys.stdout) as handle:
        writer = RecordWriter(handle, fmt, explain)
        for frame, where in input_chunks(texts, file, stdin, chunk_rows):
            column = find_column(frame, text_column if where != "arguments" else "text", TEXT_COLUMNS, "text", where)
            values = frame[column].tolist()
            if summary["rows"] == 0 and (warning := model.unreadable_warning([v for v in values if isinstance(v, str)])):
                print(f"warning: {warning}", file=sys.stderr)
            records = records_for(model, values, explain)
            _count(summary, records, where, rows_of.get(where, 0))
            rows_of[where] = rows_of.get(where, 0) + len(records)
            writer.write(records)
        if summary["rows"] == 0:  # raised inside the block: an --output file is not created
            where = "standard input" if file in (None, STDIN) else file
            raise SentituneError(f"nothing to classify: {where} holds no texts")
    return summary


def _count(summary: dict, records: list[dict], where: str, before: int) -> None:
    for i, record in enumerate(records, start=before + 1):
        if record.get("error"):
            summary["first_error"] = summary["first_error"] or f"{where} row {i}: {record['error']}"
            summary["errors"] += 1
    summary["rows"] += len(records)
