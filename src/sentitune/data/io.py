"""The one table reader, and the writer of the one schema sentitune uses.

Every command that reads data (``data prepare``, ``train``, ``evaluate``, ``predict --file``,
``score`` and its Ray engine) reads it through :func:`iter_table`, so one file gives the same rows,
values and missing values on every path. The rules:

* Formats, by suffix (optionally ``.gz``): ``.jsonl``/``.json`` (JSON Lines, or one JSON array),
  ``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.txt``, a file without a suffix, a directory written by
  ``datasets.Dataset.save_to_disk``, and a directory holding any of these (read in name order).
* ``.tsv`` has a header row, or is headerless ``text<TAB>label`` / ``label<TAB>text`` as Weibo
  corpora ship (recognised by a label token in the first row). A ``.txt`` file is read the same way
  when its first line looks like such a table (a headerless pair, or a header naming a text or
  label column); otherwise, like a file without a suffix, it holds one text per line in a column
  ``text``, blank lines skipped.
* Types: CSV, TSV and lines carry no types, so every field is a string, exactly as written ("NA",
  "null" and "12345" are texts). JSON values stay the Python values ``json.loads`` gives (object
  columns, the same whatever the chunk); Parquet and datasets keep their own types.
* Missing values: an empty CSV/TSV field, a JSON ``null`` or absent key, and a Parquet null are all
  ``None`` in text (object) columns; numeric columns hold NaN, as pandas does.

Frames come ``chunk_rows`` rows at a time (``None``: the whole file), never more in memory.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import select
from pathlib import Path
from typing import BinaryIO, Iterator

import pandas as pd

from sentitune.errors import DataError

TEXT_COLUMNS = ("text", "review", "review_text", "content", "sentence", "tweet", "x_valid", "body", "comment")
LABEL_COLUMNS = ("label", "sentiment", "polarity", "target", "stars", "rating", "score")
SCHEMA = ("text", "label", "sentiment", "source", "confidence", "length", "dataset_source")
_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet", ".pq")
_LABEL_TOKENS = {"0", "1", "4", "pos", "neg", "positive", "negative"}
_NO_CHUNKS = 1 << 62  # chunk_rows=None: one frame per file


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _open_text(path: Path):
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _is_datasets_dir(path: Path) -> bool:
    return (path / "dataset_info.json").exists() or (path / "state.json").exists()


def _readable(path: Path) -> bool:
    """A data file by its name: a known suffix, or no suffix at all (a plain text file)."""
    return _base_suffix(path) in _SUFFIXES or (not path.name.startswith(".") and _base_suffix(path) == "")


def table_files(path: str | Path) -> list[Path]:
    """The files (or datasets directory) that make up ``path``, in reading order."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"input not found: {path}")
    if path.is_dir():
        if _is_datasets_dir(path):
            return [path]
        files = sorted(p for p in path.rglob("*") if p.is_file() and _base_suffix(p) in _SUFFIXES)
        if not files:
            raise DataError(f"no readable data files (jsonl, csv, tsv, txt, parquet) in {path}")
        return files
    if not _readable(path):
        raise DataError(
            f"unsupported file type {path.name!r}: use .jsonl, .json, .csv, .tsv, .txt or .parquet (optionally .gz)"
        )
    return [path]


# ------------------------------------------------------------------------------------ the rules
def normalize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects with ``None`` for every kind of missing value (NaN, pd.NA)."""
    for column in frame.columns:
        if not (pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(frame[column])):
            continue
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), None)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _first_line(path: Path) -> str:
    with _open_text(path) as fh:
        return fh.readline().rstrip("\r\n")


def _headerless_pair(first: list[str]) -> list[str] | None:
    """Column names of a headerless ``text<TAB>label`` or ``label<TAB>text`` file, else None."""
    if len(first) != 2:
        return None
    a, b = (f.strip().lower() for f in first)
    if b in _LABEL_TOKENS:
        return ["text", "label"]
    if a in _LABEL_TOKENS:
        return ["label", "text"]
    return None


def file_kind(path: Path) -> str:
    """How ``path`` is read: json, csv, tsv, parquet, datasets or lines."""
    if path.is_dir():
        return "datasets"
    kind = _base_suffix(path).lstrip(".")
    if kind in ("jsonl", "json"):
        return "json"
    if kind == "pq":
        return "parquet"
    if kind == "txt":
        first = _first_line(path).split("\t")
        known = {f.strip().lower() for f in first} & set(TEXT_COLUMNS + LABEL_COLUMNS)
        return "tsv" if len(first) > 1 and (known or _headerless_pair(first)) else "lines"
    return kind or "lines"


# ------------------------------------------------------------------------------------ readers
def _read_delimited(path: Path, sep: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    names = _headerless_pair(_first_line(path).split(sep)) if sep == "\t" else None
    whole = chunk_rows >= _NO_CHUNKS
    common = dict(sep=sep, dtype=str, keep_default_na=False, na_values=[""], chunksize=None if whole else chunk_rows)
    if names is None:
        reader = pd.read_csv(path, quoting=csv.QUOTE_MINIMAL, **common)
    else:  # Weibo-style corpora quote nothing: a '"' is part of the text
        reader = pd.read_csv(path, header=None, names=names, quoting=csv.QUOTE_NONE, **common)
    if whole:
        yield reader
        return
    with reader:
        yield from reader


def _read_json(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with _open_text(path) as fh:
        head, skipped = fh.read(1), 0
        while head.isspace():  # blank lines before the first record
            skipped += head == "\n"
            head = fh.read(1)
        if head == "[":  # one JSON array rather than JSON Lines
            records = json.loads(head + fh.read())
            for start in range(0, max(len(records), 1), chunk_rows):
                yield _records_frame(records[start : start + chunk_rows], path, start + 1)
            return
        batch: list[dict] = []
        first_line = 1 + skipped
        for number, line in enumerate(_chain(head, fh), start=1 + skipped):
            if line.strip():
                batch.append(_json_record(line, path, number))
            if len(batch) >= chunk_rows:
                yield _records_frame(batch, path, first_line)
                batch, first_line = [], number + 1
        if batch:
            yield _records_frame(batch, path, first_line)


def _chain(head: str, fh) -> Iterator[str]:
    first = head + fh.readline()
    if first:
        yield first
    yield from fh


def _json_record(line: str, path: Path, number: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"cannot read {path}: line {number}: {exc.msg}") from None
    if not isinstance(record, dict):
        raise DataError(f"cannot read {path}: line {number} is a JSON {type(record).__name__}, not an object")
    return record


def _records_frame(records: list, path: Path, first: int) -> pd.DataFrame:
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"cannot read {path}: record {first + i} is a JSON {type(record).__name__}, not an object")
    # object columns hold the values exactly as JSON has them: an int stays an int whatever else the
    # chunk holds (pandas would turn ints beside a null into floats, differently chunk by chunk)
    return pd.DataFrame(records, dtype=object)


def _read_lines(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with _open_text(path) as fh:
        batch: list[str] = []
        for line in fh:
            if line.strip():
                batch.append(line.rstrip("\r\n"))
            if len(batch) >= chunk_rows:
                yield pd.DataFrame({"text": batch})
                batch = []
        if batch:
            yield pd.DataFrame({"text": batch})


def _read_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as handle:
        for batch in handle.iter_batches(batch_size=min(chunk_rows, 1 << 20)):
            yield batch.to_pandas()


def _read_datasets(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    from datasets import load_from_disk

    try:
        ds = load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types for a bad directory
        raise DataError(f"cannot read datasets directory {path}: {exc}") from None
    for start in range(0, len(ds), min(chunk_rows, 1 << 20)):
        yield ds.select(range(start, min(start + chunk_rows, len(ds)))).to_pandas()


_READERS = {
    "json": _read_json, "csv": lambda p, n: _read_delimited(p, ",", n),
    "tsv": lambda p, n: _read_delimited(p, "\t", n), "parquet": _read_parquet,
    "datasets": _read_datasets, "lines": _read_lines,
}


def iter_file(path: Path, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """One file (or datasets directory) in normalised frames of at most ``chunk_rows`` rows."""
    import pyarrow as pa

    try:
        for frame in _READERS[file_kind(path)](path, chunk_rows or _NO_CHUNKS):
            yield normalize_frame(frame)
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError, OSError, EOFError, pa.ArrowException, pd.errors.ParserError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read {path}: {detail}") from None


def iter_table(path: str | Path, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """A file or directory as normalised frames of at most ``chunk_rows`` rows (``None``: per file)."""
    for file in table_files(path):
        yield from iter_file(file, chunk_rows)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one file or directory into one DataFrame; raise DataError naming the problem."""
    frames = list(iter_table(path))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0] if frames else pd.DataFrame()


def iter_lines(stream: BinaryIO, chunk_rows: int, name: str = "standard input") -> Iterator[pd.DataFrame]:
    """A byte stream (stdin) as frames of one ``text`` column, one text per line, blank lines skipped.

    A chunk is given out when it is full or when the stream has nothing more waiting, so a pipe
    fed slowly (``tail -f``) is answered as it goes rather than after ``chunk_rows`` lines.
    """
    fd = _fileno(stream)
    pending, batch, number = b"", [], 0
    while True:
        data = os.read(fd, 1 << 16) if fd is not None else stream.read(1 << 16)
        if not data:
            break
        *complete, pending = (pending + data).split(b"\n")
        for raw in complete:
            number += 1
            _append_line(batch, raw, number, name)
            if len(batch) >= chunk_rows:
                yield pd.DataFrame({"text": batch})
                batch = []
        if batch and fd is not None and not _waiting(fd):
            yield pd.DataFrame({"text": batch})
            batch = []
    if pending:
        _append_line(batch, pending, number + 1, name)
    if batch:
        yield pd.DataFrame({"text": batch})


def _append_line(batch: list[str], raw: bytes, number: int, name: str) -> None:
    try:
        text = raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        raise DataError(f"cannot read {name}: line {number} is not UTF-8 text") from None
    if text.strip():
        batch.append(text)


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def _waiting(fd: int) -> bool:
    """Whether more input is ready on ``fd`` right now (a regular file always is)."""
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):  # select on a pipe is not possible everywhere (Windows)
        return True


# ------------------------------------------------------------------------------------ columns
def find_column(df: pd.DataFrame, wanted: str | None, candidates: tuple[str, ...], what: str, path) -> str:
    if wanted:
        if wanted not in df.columns:
            raise DataError(f"{path}: no column {wanted!r} (columns: {', '.join(map(str, df.columns))})")
        return wanted
    lower = {str(c).lower(): c for c in df.columns}
    for c in candidates:
        if c in lower:
            return lower[c]
    raise DataError(
        f"{path}: no {what} column found (looked for {', '.join(candidates)}; columns: {', '.join(map(str, df.columns))})"
    )


def read_texts(path: str | Path, text_column: str | None = None) -> list:
    """The text column of a file, whole (None where a value is missing); `predict` streams instead."""
    texts: list = []
    for frame in iter_table(path):
        texts += frame[find_column(frame, text_column, TEXT_COLUMNS, "text", path)].tolist()
    return texts


# ------------------------------------------------------------------------------------ writing
def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    """Write rows as JSON Lines (gzipped for ``.gz``); the file appears only once complete."""
    from sentitune.atomic import atomic_write

    path = Path(path)
    if path.suffix == ".gz":
        with atomic_write(path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path
    with atomic_write(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input not found: {path}")
    try:
        with _open_text(path) as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
