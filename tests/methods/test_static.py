"""`static`: model2vec embeddings + an MLP head (+ the optional n-gram part), fitted here on the bundled sample."""


import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sentitune
from sentitune.config import TrainConfig
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.static import HEAD_FILE, NGRAM_KEY, STATIC_FILES, StaticHead
from sentitune.presets import FAST_ENGLISH

# the shipped fast model is itself a model2vec folder (its three files sit flat beside the head)
STATIC_DIR = FAST_ENGLISH


def _accuracy(model, rows) -> float:
    pred = model.predict_proba([r["text"] for r in rows]).argmax(axis=1)
    return float(np.mean(pred == [r["label"] for r in rows]))


def test_fits_above_chance_and_reloads_identically(tmp_path, sample_train, sample_test):
    rows = sample_train[:400] + sample_train[-400:]  # both labels, whatever the file's order
    model = StaticHead().fit(rows, sample_train[400:600], TrainConfig(method="static", model=str(STATIC_DIR)))
    assert 0.5 < model.meta.training["best_val_accuracy"] <= 1  # the best epoch on the validation rows
    held_out = sample_test[:300]
    assert _accuracy(model, held_out) > 0.65  # chance is ~0.5 on the balanced sample (0.65 is 5 sd above it on 300 rows)

    out = model.save(tmp_path / "static")
    names = {p.name for p in out.iterdir()}
    assert {*STATIC_FILES, HEAD_FILE, "sentitune.json"} <= names and "modules.json" not in names
    loaded = sentitune.load(out)
    assert isinstance(loaded, StaticHead)
    texts = [r["text"] for r in held_out] + ["a text of words the vocabulary has never seen: zxqv"]
    assert np.array_equal(loaded.predict_proba(texts), model.predict_proba(texts))


def test_soft_targets_are_fitted(sample_train):
    rows = sample_train[:150] + sample_train[-150:]
    # a teacher's soft P(POSITIVE): right side of 0.5 for every row, never 0 or 1
    soft = [dict(r, soft_label=0.2 + 0.6 * r["label"]) for r in rows]
    model = StaticHead().fit(soft, None, TrainConfig(method="static", model=str(STATIC_DIR)))
    assert model.meta.training["soft_targets"] is True
    assert _accuracy(model, rows) > 0.75
    p = model.predict_proba(["a wonderful, moving film", "a dull and tedious mess"])[:, 1]
    assert p[0] > 0.5 > p[1]


POSITIVE_WORDS = ["good", "great", "wonderful", "excellent", "lovely", "superb", "brilliant", "delightful"]
NEGATIVE_WORDS = ["bad", "awful", "terrible", "dreadful", "poor", "boring", "horrible", "dull"]


def _contrast_rows(pairs) -> list[dict]:
    """'it was X, not Y': the label is X's. Swapping X and Y keeps every token, so a mean of token
    vectors gives both orders the same score; only the bigrams ('not good' vs 'not bad') tell them apart."""
    return [{"text": f"it was {a}, not {b}", "label": int(a in POSITIVE_WORDS)}
            for p, n in pairs for a, b in ((p, n), (n, p))]


def test_the_ngram_part_reads_word_order_that_a_mean_of_vectors_cannot(sample_train):
    pairs = [(p, n) for p in POSITIVE_WORDS for n in NEGATIVE_WORDS]
    random.Random(0).shuffle(pairs)
    seen, unseen = pairs[:48], pairs[48:]  # every word occurs in both; the test pairs are new combinations
    rows = sample_train[:300] + sample_train[-300:] + _contrast_rows(seen) * 3
    test = _contrast_rows(unseen)
    plain = StaticHead().fit(rows, None, TrainConfig(method="static", model=str(STATIC_DIR)), epochs=5)
    z = plain.logits([r["text"] for r in test])[:, 1]
    assert np.allclose(z[0::2], z[1::2], atol=1e-5)  # the two orders of a pair: the same tokens, the same score
    wide = StaticHead().fit(rows, None, TrainConfig(method="static", model=str(STATIC_DIR), ngram_buckets=2**12),
                            epochs=5)
    assert wide.meta.training["ngrams"]["buckets"] == 2**12
    assert _accuracy(wide, test) >= 0.9  # chance is 0.5: each pair is one right and one wrong for a bag of tokens


def test_an_ngram_model_saves_in_float16_and_reloads_identically(tmp_path, sample_train, sample_test):
    rows = sample_train[:300] + sample_train[-300:]
    config = TrainConfig(method="static", model=str(STATIC_DIR), ngram_buckets=2**14)
    model = StaticHead().fit(rows, sample_test[:100], config, epochs=3)
    assert 0.5 < model.meta.training["ngrams"]["val_accuracy"] <= 1
    out = model.save(tmp_path / "wide")
    from safetensors.numpy import load_file

    stored = load_file(str(out / HEAD_FILE))[NGRAM_KEY]
    assert stored.dtype == np.float16 and len(stored) == model.static.tokenizer.get_vocab_size() + 2**14
    texts = [r["text"] for r in sample_test[:200]] + ["zxqv"]
    assert np.array_equal(sentitune.load(out).predict_proba(texts), model.predict_proba(texts))


@pytest.fixture(scope="module")
def fast_english():
    return sentitune.load(STATIC_DIR)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 29000), max_size=12), min_size=1, max_size=8))
def test_ngram_features_count_each_text_s_own_tokens_and_bigrams(fast_english, texts):
    counts = np.array([len(t) for t in texts])
    flat = np.array([i for t in texts for i in t], dtype=np.int64)
    x = fast_english._ngram_features(flat, counts, 2**10)
    vocab = fast_english.static.tokenizer.get_vocab_size()
    norm = np.sqrt(np.maximum(2 * counts - 1, 1))
    # n tokens and n - 1 bigrams, none across texts, each worth 1 / sqrt(2n - 1)
    assert np.allclose(np.asarray(x[:, :vocab].sum(axis=1)).ravel(), counts / norm, atol=1e-5)
    assert np.allclose(np.asarray(x[:, vocab:].sum(axis=1)).ravel(), np.maximum(counts - 1, 0) / norm, atol=1e-5)


def test_a_folder_without_a_static_model_is_one_line_error(tmp_path, sample_train):
    with pytest.raises(SentituneError, match="is not a model2vec folder: no model.safetensors") as err:
        StaticHead().fit(sample_train[:10], None, TrainConfig(method="static", model=str(tmp_path)))
    assert "\n" not in str(err.value)


def test_a_head_of_the_wrong_size_is_an_artifact_error(tmp_path, sample_train):
    from safetensors.numpy import save_file

    from sentitune.artifact import ArtifactMeta, write_meta

    model = StaticHead().fit(sample_train[:50] + sample_train[-50:], None,
                             TrainConfig(method="static", model=str(STATIC_DIR)), epochs=2)
    out = model.save(tmp_path / "static")
    wrong = {"w1": np.zeros((2, 4), np.float32), "b1": np.zeros(4, np.float32), "w2": np.zeros(4, np.float32),
             "b2": np.zeros(1, np.float32)}
    save_file(wrong, str(out / HEAD_FILE))
    # re-record the digests: the files are consistent, the head's shape is wrong
    write_meta(out, ArtifactMeta.model_validate_json((out / "sentitune.json").read_text()))
    with pytest.raises(ArtifactError, match="takes 2-dim inputs, the embeddings are 256-dim"):
        sentitune.load(out)

    save_file(dict(model.head, ngrams=np.zeros(10, np.float32)), str(out / HEAD_FILE))  # no room for bigrams
    write_meta(out, ArtifactMeta.model_validate_json((out / "sentitune.json").read_text()))
    with pytest.raises(ArtifactError, match="n-gram weights are fewer than the tokenizer's [0-9]+ tokens"):
        sentitune.load(out)
