"""The `ensemble` method: a weighted mean of its members' calibrated logits, as a normal artifact.

Real models only: the shipped character n-gram Chinese model and a tfidf trained on the bundled sample.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import sentitune
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.ensemble import EnsembleModel, build_ensemble

NGRAMS = sentitune.CHINESE_MODEL_PATH.parent / "chinese"
TEXTS = ["这部电影太好看了", "服务太差了，再也不来", "I loved it", "terrible service", "还行吧"]


def centred(model, texts):
    z = np.asarray(model.logits(texts), dtype=np.float64) / model.temperature
    return z - z.mean(axis=1, keepdims=True)


def test_the_ensemble_is_the_weighted_mean_of_its_members(tmp_path, tfidf_model_dir):
    out = build_ensemble(tmp_path / "mix", {"zh": NGRAMS, "sample": tfidf_model_dir}, {"zh": 0.25, "sample": 0.75},
                         temperature=2.0)
    mix = sentitune.load(out)
    assert isinstance(mix, EnsembleModel) and mix.meta.method == "ensemble" and mix.temperature == 2.0
    assert json.loads((out / "sentitune.json").read_text())["options"]["members"]["zh"].startswith("..")  # relative
    members = [sentitune.load(NGRAMS), sentitune.load(tfidf_model_dir)]
    expected = 0.25 * centred(members[0], TEXTS) + 0.75 * centred(members[1], TEXTS)
    np.testing.assert_allclose(mix.logits(TEXTS), expected, atol=1e-9)
    z = expected / 2.0
    np.testing.assert_allclose(mix.predict_proba(TEXTS), np.exp(z) / np.exp(z).sum(1, keepdims=True), atol=1e-9)
    # one member at weight 1 gives exactly its probabilities (the ensemble's temperature left at 1)
    alone = sentitune.load(build_ensemble(tmp_path / "alone", {"zh": NGRAMS, "sample": tfidf_model_dir},
                                          {"zh": 1.0, "sample": 0.0}))
    np.testing.assert_allclose(alone.predict_proba(TEXTS), members[0].predict_proba(TEXTS), atol=1e-9)
    # saved elsewhere, it still finds its members
    moved = sentitune.load(mix.save(tmp_path / "deeper" / "copy"))
    np.testing.assert_allclose(moved.predict_proba(TEXTS), mix.predict_proba(TEXTS), atol=1e-12)


def test_a_broken_member_is_a_one_line_error_naming_it(tmp_path, tfidf_model_dir):
    with pytest.raises(ArtifactError) as err:
        build_ensemble(tmp_path / "mix", {"zh": NGRAMS, "gone": tmp_path / "nothing-here"})
    assert "\n" not in str(err.value) and "nothing-here" in str(err.value)
    with pytest.raises(SentituneError, match="one weight >= 0 per member"):
        build_ensemble(tmp_path / "mix", {"zh": NGRAMS}, {"zh": 1.0, "other": 1.0})
    out = build_ensemble(tmp_path / "moved", {"zh": NGRAMS, "sample": tfidf_model_dir})
    meta = json.loads((out / "sentitune.json").read_text())
    meta["options"]["members"]["sample"] = "."  # the ensemble itself
    (out / "sentitune.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="member 'sample' is the ensemble itself"):
        sentitune.load(out)


def test_an_ensemble_is_composed_not_trained(cli, tmp_path):
    result = cli("train", "--method", "ensemble", "--output-dir", tmp_path / "out")
    assert result.exit_code != 0 and "build_ensemble" in result.stderr and "Traceback" not in result.stderr
