"""From files people have to sentitune's JSONL schema: map labels, clean, de-duplicate, balance, split.

``load_labelled`` turns any supported file into schema rows (used by train and evaluate too, so a
raw CSV works wherever a prepared file does). ``prepare`` runs the whole pipeline over several
sources and returns the splits with a summary of what was read and dropped, and why.
"""

from __future__ import annotations

import html
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from sentitune.data.io import LABEL_COLUMNS, TEXT_COLUMNS, find_column, read_table
from sentitune.errors import DataError

LabelFormat = Literal["auto", "names", "binary", "sentiment140", "stars"]

_NAMES = {
    "positive": 1, "pos": 1, "p": 1, "good": 1,
    "negative": 0, "neg": 0, "n": 0, "bad": 0,
}
_URL = re.compile(r"(https?://|www\.)\S+", re.I)
_MENTION = re.compile(r"(?<!\w)@\w+")
_TAG = re.compile(r"<[^>]{1,100}>")
_SPACE = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


@dataclass
class CleanOptions:
    remove_urls: bool = True
    remove_mentions: bool = True
    strip_html: bool = True
    lowercase: bool = False
    min_length: int = 10


@dataclass
class PrepareOptions:
    text_column: str | None = None
    label_column: str | None = None
    label_format: LabelFormat = "auto"
    stars_negative_max: int = 3  # 1..N -> NEGATIVE, above -> POSITIVE (the projects' rule)
    drop_neutral_stars: bool = False  # drop 3-star rows instead of calling them NEGATIVE
    clean: CleanOptions = field(default_factory=CleanOptions)
    dedup: Literal["none", "exact", "normalized"] = "normalized"
    balance: bool = True
    max_per_source: int | None = None
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 42


def clean_text(text: str, opts: CleanOptions) -> str:
    if opts.strip_html:
        text = _TAG.sub(" ", html.unescape(text))
    if opts.remove_urls:
        text = _URL.sub(" ", text)
    if opts.remove_mentions:
        text = _MENTION.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    return text.lower() if opts.lowercase else text


def normalize_for_dedup(text: str) -> str:
    """Case, accents, punctuation and spacing removed; CJK characters kept."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub("", text)


def detect_label_format(values: pd.Series) -> LabelFormat:
    distinct = {str(v).strip().lower() for v in values.dropna().unique()}
    if distinct and distinct <= set(_NAMES):
        return "names"
    try:
        nums = {float(v) for v in distinct}
    except ValueError:
        unknown = sorted(distinct - set(_NAMES))[:5]
        raise DataError(f"unknown label values {unknown}; expected POSITIVE/NEGATIVE, pos/neg, 0/1, 0/4 or stars 1-5")
    if nums <= {0.0, 1.0}:
        return "binary"
    if nums <= {0.0, 2.0, 4.0}:
        return "sentiment140"
    if nums <= {1.0, 2.0, 3.0, 4.0, 5.0}:
        return "stars"
    raise DataError(f"unknown numeric labels {sorted(nums)[:6]}; expected 0/1, 0/4 or stars 1-5")


def map_labels(values: pd.Series, fmt: LabelFormat, opts: PrepareOptions) -> pd.Series:
    """Return 0/1 labels; -1 marks a row to drop (neutral)."""
    if fmt == "auto":
        fmt = detect_label_format(values)
    if fmt == "names":
        mapped = values.astype(str).str.strip().str.lower().map(_NAMES)
    else:
        nums = pd.to_numeric(values, errors="coerce")
        if fmt == "binary":
            mapped = nums.where(nums.isin([0, 1]))
        elif fmt == "sentiment140":
            mapped = nums.map({0: 0, 4: 1, 2: -1})
        else:  # stars
            mapped = (nums > opts.stars_negative_max).astype(float).where(nums.between(1, 5))
            if opts.drop_neutral_stars:
                mapped = mapped.mask(nums == 3, -1)
    bad = mapped.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"row {i + 1}: unknown label {values.iloc[i]!r} for label format {fmt!r}")
    return mapped.astype(int)


def source_name(path: str | Path) -> str:
    """'../shared/data/yelp/shen2017_sentences_dev.jsonl.gz' -> 'yelp/shen2017_sentences_dev'."""
    path = Path(path)
    stem = path.name.split(".")[0]
    return f"{path.parent.name}/{stem}" if path.parent.name not in ("", ".") else stem


def load_labelled(
    path: str | Path, opts: PrepareOptions | None = None, source: str | None = None, clean: bool = True,
    strict: bool = False,
) -> tuple[list[dict], Counter]:
    """Read one source into schema rows. Returns (rows, drop counts by reason).

    ``strict`` (evaluation): a row that would be dropped is an error naming the row instead, so the
    rows evaluated always equal the rows in the file.
    """
    opts = opts or PrepareOptions()
    df = read_table(path)
    text_col = find_column(df, opts.text_column, TEXT_COLUMNS, "text", path)
    label_col = find_column(df, opts.label_column, LABEL_COLUMNS, "label", path)
    labels = map_labels(df[label_col], opts.label_format, opts)
    src = source or source_name(path)
    drops: Counter = Counter()
    rows = []
    # Files already in sentitune's schema carry their own per-row source: keep it (per-source reports).
    row_sources = df["source"].tolist() if source is None and "source" in df.columns else None
    category_col = next((c for c in ("category", "domain", "business_category") if c in df.columns), None)
    soft = df["soft_label"].tolist() if "soft_label" in df.columns else None
    for i, (raw, lab) in enumerate(zip(df[text_col].tolist(), labels.tolist())):
        text = raw if not isinstance(raw, str) else clean_text(raw, opts.clean) if clean else raw.strip()
        reason = (
            "neutral label" if lab < 0
            else "missing text" if not isinstance(raw, str)
            else "too short" if len(text) < (opts.clean.min_length if clean else 1)
            else None
        )
        if reason:
            if strict:
                raise DataError(f"{path}: row {i + 1}: {'empty text' if reason == 'too short' else reason}")
            drops[reason] += 1
            continue
        row_source = row_sources[i] if row_sources and isinstance(row_sources[i], str) else src
        row = {
            "text": text,
            "label": int(lab),
            "sentiment": "positive" if lab == 1 else "negative",
            "source": row_source,
            "confidence": 1.0,
            "length": len(text),
            "dataset_source": row_source.split("/")[0],
        }
        if category_col is not None and isinstance(df[category_col].iloc[i], str):
            row["category"] = df[category_col].iloc[i]
        if "id" in df.columns:
            row["id"] = str(df["id"].iloc[i])
        # a soft target P(positive) (e.g. `data augment`'s neutral identity groups): the classifier trains on it
        if soft is not None and soft[i] is not None and soft[i] == soft[i]:  # neither missing nor NaN
            row["soft_label"] = float(soft[i])
        rows.append(row)
    return rows, drops


def deduplicate(rows: list[dict], mode: str) -> tuple[list[dict], int]:
    if mode == "none":
        return rows, 0
    key = (lambda t: t) if mode == "exact" else normalize_for_dedup
    seen: set[str] = set()
    kept = []
    for row in rows:
        k = key(row["text"])
        if k in seen:
            continue
        seen.add(k)
        kept.append(row)
    return kept, len(rows) - len(kept)


def balance_classes(rows: list[dict], rng: np.random.Generator) -> tuple[list[dict], int]:
    """Down-sample the majority class within each source, so no source skews the label prior."""
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    kept = []
    for group in by_source.values():
        pos = [r for r in group if r["label"] == 1]
        neg = [r for r in group if r["label"] == 0]
        n = min(len(pos), len(neg))
        for cls in (pos, neg):
            idx = rng.permutation(len(cls))[:n] if len(cls) > n else range(len(cls))
            kept.extend(cls[i] for i in sorted(idx))
    return kept, len(rows) - len(kept)


def sample_even_by_source(rows: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` of ``rows`` at random, as evenly over sources as their sizes allow: every row of a source
    smaller than its share, the rest shared by the larger ones; shuffled. A small training budget then
    is not spent mostly on the one large source (SST-2 is two thirds of the shipped models' rows)."""
    if len(rows) <= n:
        return list(rows)
    rng = random.Random(seed)
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(str(row.get("source", "")), []).append(row)
    picked, left = [], n
    for i, group in enumerate(sorted(by_source.values(), key=len)):
        take = min(len(group), left // (len(by_source) - i))
        picked += rng.sample(group, take)
        left -= take
    rng.shuffle(picked)
    return picked


def split_rows(rows: list[dict], fractions: tuple[float, float, float], seed: int) -> dict[str, list[dict]]:
    """Seeded split stratified by (source, label), so every split has every source in proportion."""
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise DataError(f"split fractions must sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    strata: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        strata.setdefault((row["source"], row["label"]), []).append(i)
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for idx in strata.values():
        idx = [idx[j] for j in rng.permutation(len(idx))]
        n_val = int(round(len(idx) * fractions[1]))
        n_test = int(round(len(idx) * fractions[2]))
        out["test"].extend(idx[:n_test])
        out["val"].extend(idx[n_test : n_test + n_val])
        out["train"].extend(idx[n_test + n_val :])
    return {name: [rows[i] for i in sorted(ix)] for name, ix in out.items()}


def prepare(
    sources: list[str | Path], opts: PrepareOptions | None = None
) -> tuple[dict[str, list[dict]], dict]:
    """Run the pipeline; return ({"train","val","test"} rows, summary)."""
    opts = opts or PrepareOptions()
    if not sources:
        raise DataError("no input files given")
    rng = np.random.default_rng(opts.seed)
    rows: list[dict] = []
    drops: Counter = Counter()
    read = 0
    for src in sources:
        src_rows, src_drops = load_labelled(src, opts)
        read += len(src_rows) + sum(src_drops.values())
        drops.update(src_drops)
        if opts.max_per_source and len(src_rows) > opts.max_per_source:
            pick = sorted(rng.choice(len(src_rows), opts.max_per_source, replace=False))
            drops["over max_per_source"] += len(src_rows) - len(pick)
            src_rows = [src_rows[i] for i in pick]
        rows.extend(src_rows)
    rows, n = deduplicate(rows, opts.dedup)
    drops["duplicate"] += n
    if opts.balance:
        rows, n = balance_classes(rows, rng)
        drops["balancing"] += n
    splits = split_rows(rows, opts.split, opts.seed)
    summary = {
        "rows_read": read,
        "rows_written": len(rows),
        "dropped": {k: v for k, v in drops.items() if v},
        "splits": {k: len(v) for k, v in splits.items()},
        "per_class": dict(Counter(r["sentiment"] for r in rows)),
        "per_source": dict(Counter(r["source"] for r in rows)),
        "seed": opts.seed,
    }
    return splits, summary
