"""Reading the formats people have, and writing the one schema sentitune uses.

Readers return a pandas DataFrame as the file has it; `prepare.py` maps columns and labels.
Supported: JSONL/JSON (optionally .gz), CSV, TSV/TXT (with a header, or headerless
``text<TAB>label`` / ``label<TAB>text`` as Weibo corpora ship), Parquet, a directory written by
``datasets.Dataset.save_to_disk``, and a directory holding any of these files.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pandas as pd

from sentitune.errors import DataError

TEXT_COLUMNS = ("text", "review", "review_text", "content", "sentence", "tweet", "x_valid", "body", "comment")
LABEL_COLUMNS = ("label", "sentiment", "polarity", "target", "stars", "rating", "score")
SCHEMA = ("text", "label", "sentiment", "source", "confidence", "length", "dataset_source")
_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet", ".pq")
_LABEL_TOKENS = {"0", "1", "4", "pos", "neg", "positive", "negative"}


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _open_text(path: Path):
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _read_delimited(path: Path, sep: str) -> pd.DataFrame:
    with _open_text(path) as fh:
        first = fh.readline().rstrip("\r\n").split(sep)
    headerless = len(first) == 2 and (
        first[1].strip().lower() in _LABEL_TOKENS or first[0].strip().lower() in _LABEL_TOKENS
    )
    if not headerless:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL)
    label_first = first[0].strip().lower() in _LABEL_TOKENS and first[1].strip().lower() not in _LABEL_TOKENS
    names = ["label", "text"] if label_first else ["text", "label"]
    return pd.read_csv(
        path, sep=sep, header=None, names=names, dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE
    )


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one file or directory into a DataFrame; raise DataError naming the problem."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"input not found: {path}")
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():
            from datasets import load_from_disk

            try:
                return load_from_disk(str(path)).to_pandas()
            except Exception as exc:  # datasets raises many types for a bad directory
                raise DataError(f"cannot read datasets directory {path}: {exc}") from None
        files = sorted(p for p in path.rglob("*") if p.is_file() and _base_suffix(p) in _SUFFIXES)
        if not files:
            raise DataError(f"no readable data files (jsonl, csv, tsv, parquet) in {path}")
        return pd.concat([read_table(f) for f in files], ignore_index=True)
    kind = _base_suffix(path)
    try:
        if kind in (".jsonl", ".json"):
            try:
                return pd.read_json(path, lines=True, dtype=False)
            except ValueError:
                if kind == ".json":  # a JSON array rather than JSON Lines
                    return pd.DataFrame(json.loads(Path(path).read_text()))
                raise
        if kind == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if kind in (".tsv", ".txt"):
            return _read_delimited(path, "\t")
        if kind in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError, OSError, EOFError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    raise DataError(f"unsupported file type {path.name!r}: use .jsonl, .json, .csv, .tsv, .txt or .parquet (optionally .gz)")


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


def read_texts(path: str | Path, text_column: str | None = None) -> list[str]:
    """Texts to score: a JSONL/CSV/TSV/Parquet with a text column, or a plain file with one text per line."""
    path = Path(path)
    if path.is_file() and _base_suffix(path) == ".txt" or (path.is_file() and _base_suffix(path) == ""):
        try:
            with _open_text(path) as fh:
                return [line.rstrip("\r\n") for line in fh if line.strip()]
        except (UnicodeDecodeError, OSError) as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
    df = read_table(path)
    col = find_column(df, text_column, TEXT_COLUMNS, "text", path)
    return df[col].astype(str).tolist()


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:
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
