"""Data: read the formats people have, clean, de-duplicate, balance, split, write one JSONL schema."""

from sentitune.data.io import SCHEMA, iter_table, read_jsonl, read_table, read_texts, write_jsonl
from sentitune.data.prepare import CleanOptions, PrepareOptions, load_labelled, prepare

__all__ = [
    "SCHEMA", "CleanOptions", "PrepareOptions", "load_labelled", "prepare",
    "iter_table", "read_jsonl", "read_table", "read_texts", "write_jsonl", "SAMPLE_DIR", "sample_path",
]

from pathlib import Path as _Path

# Bundled sample (made by scripts/make_sample.py): the default training data and the test fixtures.
SAMPLE_DIR = _Path(__file__).parent / "sample"


def sample_path(split: str) -> _Path:
    """Path of the bundled sample's ``train``, ``val`` or ``test`` split."""
    return SAMPLE_DIR / f"{split}.jsonl.gz"
