"""Every method on real models: fit on the bundled sample, save, reload, predict identically."""

import numpy as np
import pytest

import sentitune
from sentitune.config import TrainConfig
from sentitune.training import run_training


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


def test_every_registered_method_takes_precision_and_device_keywords():
    import inspect

    from sentitune.methods import METHODS, get_method

    for name in METHODS:
        params = inspect.signature(get_method(name).from_artifact).parameters
        for keyword in ("precision", "device"):
            assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY and params[keyword].default is None, name


def lora_instruct_artifact(directory):
    """An `instruct` artifact (a fresh LoRA adapter on tiny-qwen3): saved and loaded like a trained one."""
    from sentitune.artifact import ArtifactMeta
    from sentitune.config import LoraConfig
    from sentitune.methods.hf import add_lora, load_base_tokenizer
    from sentitune.methods.instruct import InstructModel, load_causal_lm

    lora = LoraConfig(enabled=True, r=4)
    meta = ArtifactMeta(method="instruct", base_model="tiny-qwen3", max_length=64, options={"lora": lora.model_dump()})
    model = add_lora(load_causal_lm("tiny-qwen3"), lora, "CAUSAL_LM")
    return InstructModel(meta, model, load_base_tokenizer("tiny-qwen3")).save(directory)


def zero_shot_artifact(directory):
    from sentitune.artifact import ArtifactMeta, write_meta

    write_meta(directory, ArtifactMeta(method="zero-shot", base_model="tiny-qwen3", max_length=64))
    return directory


def lexicon_artifact(directory):
    from sentitune.methods.lexicon import LexiconModel

    return LexiconModel().save(directory)


@pytest.mark.parametrize("build", [None, "tfidf", lexicon_artifact, zero_shot_artifact, lora_instruct_artifact])
def test_load_with_precision_and_device_works_for_every_method(tmp_path, tfidf_model_dir, build):
    """`sentitune.load(dir, precision="bf16", device="cpu")` raised TypeError for instruct and zero-shot.
    (head: tests/methods/test_head.py; onnx: tests/export/test_onnx.py; None: the shipped classifier.)"""
    import torch

    path = tfidf_model_dir if build == "tfidf" else (build(tmp_path / "m") if build else None)
    model = sentitune.load(path, precision="bf16", device="cpu")
    proba = model.predict_proba(["a delightful surprise", "utterly boring"])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(1), 1)
    if build in (None, zero_shot_artifact, lora_instruct_artifact):  # the torch methods really run in bf16
        assert next(model.model.parameters()).dtype == torch.bfloat16


def test_capabilities_are_declared_not_probed(tfidf_model_dir, tmp_path):
    from sentitune.errors import SentituneError

    tfidf = sentitune.load(tfidf_model_dir)
    assert not tfidf.capabilities.explain and tfidf.tokenizer is None
    assert tfidf.unreadable_warning(["讨厌"]) is None  # no tokenizer, no vocabulary to miss
    with pytest.raises(SentituneError, match="method 'tfidf' cannot explain its predictions"):
        tfidf.explain(["fine"])
    zero_shot = sentitune.load(zero_shot_artifact(tmp_path / "zs"))
    assert zero_shot.capabilities.explain and zero_shot.capabilities.batch_size
    assert len(zero_shot.explain(["great"], ["POSITIVE"])) == 1
    assert sentitune.load().capabilities.tokenizer  # the shipped classifier warns on unreadable text
