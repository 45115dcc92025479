import json
import shutil

import numpy as np
import pytest

import sentitune
from sentitune.errors import ArtifactError


def test_tfidf_artifact_round_trip(tfidf_model_dir, sample_test):
    model = sentitune.load(tfidf_model_dir)
    texts = [r["text"] for r in sample_test[:50]]
    proba = model.predict_proba(texts)
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1)
    meta = json.loads((tfidf_model_dir / "sentitune.json").read_text())
    assert meta["method"] == "tfidf" and meta["labels"] == ["NEGATIVE", "POSITIVE"]
    assert model.predict(["I absolutely love this product, it is wonderful"]) == ["POSITIVE"]


def test_temperature_changes_confidence_not_labels(tfidf_model_dir, tmp_path):
    shutil.copytree(tfidf_model_dir, tmp_path / "m")
    texts = ["great fun", "terrible waste of money", "not bad at all"]
    before = sentitune.load(tmp_path / "m").predict_proba(texts)
    sentitune.artifact.update_meta(tmp_path / "m", temperature=3.0)
    after = sentitune.load(tmp_path / "m").predict_proba(texts)
    assert (before.argmax(1) == after.argmax(1)).all()
    assert (np.abs(after[:, 1] - 0.5) < np.abs(before[:, 1] - 0.5)).all()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: shutil.rmtree(d), "model directory not found"),
        (lambda d: (d / "sentitune.json").unlink(), "sentitune.json is missing"),
        (lambda d: (d / "sentitune.json").write_text("{not json"), "corrupt: not valid JSON"),
        (lambda d: (d / "tfidf.joblib").unlink(), "incomplete: missing tfidf.joblib"),
        (lambda d: (d / "tfidf.joblib").write_bytes(b"\x80\x04garbage"), "tfidf.joblib is corrupt"),
    ],
)
def test_damaged_artifacts_give_clear_errors(tfidf_model_dir, tmp_path, damage, message):
    target = tmp_path / "m"
    shutil.copytree(tfidf_model_dir, target)
    damage(target)
    with pytest.raises(ArtifactError, match=message):
        sentitune.load(target)


def test_empty_and_non_string_texts_are_rejected(tfidf_model_dir):
    model = sentitune.load(tfidf_model_dir)
    with pytest.raises(sentitune.errors.SentituneError, match="text 1 is empty"):
        model.predict(["fine", "   "])
    with pytest.raises(sentitune.errors.SentituneError, match="text 0 is int"):
        model.predict([3])
