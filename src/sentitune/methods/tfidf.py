"""`tfidf`: word + character n-gram TF-IDF and logistic regression.

The fastest path (thousands of texts/s on one core) and language-agnostic: character n-grams
handle Chinese Weibo text with no tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from sentitune.artifact import ArtifactMeta
from sentitune.atomic import atomic_write
from sentitune.errors import ArtifactError
from sentitune.methods.base import Scorer, SentimentModel

WEIGHTS = "tfidf.joblib"


class TfidfModel(SentimentModel):
    method = "tfidf"

    def __init__(self, meta: ArtifactMeta | None = None, pipeline: Pipeline | None = None):
        super().__init__(meta)
        self.pipeline = pipeline

    @staticmethod
    def build(c: float = 4.0, max_features: int = 300_000) -> Pipeline:
        features = FeatureUnion(
            [
                ("word", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=max_features)),
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True, max_features=max_features
                    ),
                ),
            ]
        )
        return Pipeline([("features", features), ("clf", LogisticRegression(C=c, max_iter=2000))])

    def fit(self, train: list[dict], val: list[dict] | None = None, config: Any = None, *,
            metrics: Scorer | None = None) -> "TfidfModel":
        self.pipeline = self.build()
        self.pipeline.fit([r["text"] for r in train], [int(r["label"]) for r in train])
        self.meta.training = {"train_rows": len(train)}
        return self

    def logits(self, texts: list[str]) -> np.ndarray:
        # predict_log_proba: softmax of log-probabilities gives back the probabilities.
        return self.pipeline.predict_log_proba(texts)

    def save_weights(self, directory: Path) -> list[str]:
        with atomic_write(directory / WEIGHTS, "wb") as handle:
            joblib.dump(self.pipeline, handle, compress=3)
        return [WEIGHTS]

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None) -> "TfidfModel":
        """scikit-learn weights: ``precision`` and ``device`` do not apply."""
        try:
            pipeline = joblib.load(directory / WEIGHTS)
        except Exception as exc:  # joblib/pickle raise many types on a truncated file
            raise ArtifactError(f"{directory / WEIGHTS} is corrupt: {type(exc).__name__}: {exc}") from None
        return cls(meta, pipeline)
