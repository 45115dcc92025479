"""`lexicon`: the VADER rule-based baseline (no training, no weights).

VADER's compound score in [-1, 1] is scaled into logits so that the usual softmax gives a
probability; temperature calibration then makes it comparable with the learned methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sentitune.artifact import ArtifactMeta
from sentitune.methods.base import Scorer, SentimentModel

SCALE = 3.0  # compound 1.0 -> P(POSITIVE) = sigmoid(3) = 0.95 before calibration


class LexiconModel(SentimentModel):
    method = "lexicon"

    def __init__(self, meta: ArtifactMeta | None = None):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        super().__init__(meta or ArtifactMeta(method=self.method, base_model="vader"))
        self.analyzer = SentimentIntensityAnalyzer()

    def fit(self, train: list[dict], val: list[dict] | None = None, config: Any = None, *,
            metrics: Scorer | None = None) -> "LexiconModel":
        return self  # rules only; `sentitune train --method lexicon` still calibrates on val and saves

    def logits(self, texts: list[str]) -> np.ndarray:
        z = np.array([self.analyzer.polarity_scores(t)["compound"] for t in texts]) * SCALE
        return np.stack([-z / 2, z / 2], axis=1)

    def save_weights(self, directory: Path) -> list[str]:
        return []

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None) -> "LexiconModel":
        """Rules, no weights: ``precision`` and ``device`` do not apply."""
        return cls(meta)
