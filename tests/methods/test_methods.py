"""Every method on real models: fit on the bundled sample, save, reload, predict identically."""

import numpy as np
import pytest

import sentitune
from sentitune.config import TrainConfig
from sentitune.methods.train import run_training


@pytest.mark.parametrize("method, min_acc", [("tfidf", 0.7), ("lexicon", 0.6), ("head", 0.62)])
def test_train_save_reload_predict_identically(tmp_path, sample_train, sample_test, method, min_acc):
    cfg = TrainConfig(method=method, output_dir=str(tmp_path / method), max_train_samples=1200)
    out = run_training(cfg)
    model = sentitune.load(out)
    texts = [r["text"] for r in sample_test[:150]]
    proba = model.predict_proba(texts)
    again = sentitune.load(out).predict_proba(texts)
    np.testing.assert_allclose(proba, again, atol=1e-6)
    acc = np.mean(proba.argmax(1) == np.array([r["label"] for r in sample_test[:150]]))
    assert acc >= min_acc, acc
    assert model.meta.metrics["val"]["n"] > 0 and model.meta.temperature > 0


def test_lora_classifier_reloads_exactly(tmp_path, sample_train):
    cfg = TrainConfig(method="classifier", output_dir=str(tmp_path / "clf"), max_steps=3, batch_size=8,
                      max_train_samples=64, eval_strategy="no", calibrate=False)
    cfg.lora.enabled = True
    out = run_training(cfg)
    texts = ["a delightful surprise", "utterly boring and far too long"]
    merged = sentitune.load(out).logits(texts)
    unmerged = sentitune.load(out, merge=False).logits(texts)
    np.testing.assert_allclose(merged, unmerged, atol=1e-4)


def test_lru_cache_returns_the_same_scores_and_evicts(tfidf_model_dir):
    plain = sentitune.load(tfidf_model_dir)
    cached = sentitune.load(tfidf_model_dir).enable_cache(3)
    texts = ["great food", "awful service", "great food", "cold and late", "fine value"]
    np.testing.assert_allclose(cached.predict_proba(texts), plain.predict_proba(texts))
    assert (cached.cache_misses, cached.cache_hits) == (4, 1)  # the repeated text was scored once
    assert list(cached._cache.rows) == ["great food", "cold and late", "fine value"]  # the 3 most recently used
    np.testing.assert_allclose(cached.predict_proba(["fine value"]), plain.predict_proba(["fine value"]))
    assert cached.cache_hits == 2


def test_training_an_english_encoder_on_chinese_warns(tmp_path, sample_train):
    chinese = [r for r in sample_train if r["source"].startswith("weibo")][:32]
    cfg = TrainConfig(method="classifier", output_dir=str(tmp_path / "zh"), max_steps=1, batch_size=8,
                      eval_strategy="no", calibrate=False)
    from sentitune.methods.classifier import SequenceClassifier

    with pytest.warns(UserWarning, match="tokens are unknown to the all-minilm-l6-v2 tokenizer"):
        SequenceClassifier().fit(chinese, None, cfg)
