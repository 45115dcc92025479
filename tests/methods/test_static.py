"""`static`: model2vec embeddings + an MLP head, fitted here on the bundled sample."""


import numpy as np
import pytest

import sentitune
from sentitune.config import TrainConfig
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.static import HEAD_FILE, STATIC_FILES, StaticHead
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
