"""Rebuild the bundled sample (src/sentitune/data/sample/) from ../shared/data, reproducibly.

    python scripts/make_sample.py [--shared ../shared/data]

A few thousand rows across every source, cleaned, de-duplicated, balanced per source and split
80/10/10 with seed 42, through the same pipeline as `sentitune data prepare`. Long reviews are
capped per source so the package stays small.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sentitune.data import PrepareOptions, prepare, write_jsonl

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "src" / "sentitune" / "data" / "sample"
PER_SOURCE = 400


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = ap.parse_args()
    sources = sorted(str(p) for p in Path(args.shared).glob("*/*.jsonl.gz"))
    if not sources:
        raise SystemExit(f"no *.jsonl.gz under {args.shared}")
    splits, summary = prepare(sources, PrepareOptions(max_per_source=PER_SOURCE, seed=42))
    SAMPLE_DIR.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        write_jsonl(rows, SAMPLE_DIR / f"{name}.jsonl.gz")
    (SAMPLE_DIR / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(summary["splits"]), json.dumps(summary["per_source"]))


if __name__ == "__main__":
    main()
