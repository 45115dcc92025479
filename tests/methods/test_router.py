"""The `router` method: texts go to the sub-model of their script, probabilities stay the sub-model's.

Real models only: the shipped default for English, a tfidf trained on the bundled sample's Weibo
rows for Chinese, and the shipped Chinese router (src/sentitune/models/router).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import sentitune
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.router import DEFAULT_MODEL_DIR, RouterModel, build_router
from sentitune.methods.script import dominant_script
from conftest import assert_one_line_error

SHIPPED_ROUTER = DEFAULT_MODEL_DIR.parent / "models" / "router"
MIXED = ["这部电影太好看了", "What a wonderful film", "服务太差了，再也不来", "この映画は面白い", "Это ужасный фильм", "terrible", "👍👍"]


@pytest.fixture(scope="module")
def chinese_dir(tmp_path_factory, sample_train):
    from sentitune.methods.tfidf import TfidfModel

    rows = [r for r in sample_train if r["source"].startswith("weibo/")]
    assert len(rows) > 300
    model = TfidfModel().fit(rows)
    model.meta.temperature = 1.7  # a calibrated sub-model: the router must apply this, and only this
    return model.save(tmp_path_factory.mktemp("zh"))


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory, chinese_dir):
    return build_router(tmp_path_factory.mktemp("router") / "r", {"zh": chinese_dir, "en": "default"})


@pytest.mark.parametrize(
    "text, script",
    [
        ("这部电影太好看了", "Han"), ("这个iPhone太好用了", "Han"), ("I watched 让子弹飞 yesterday", "Latin"),
        ("この映画は面白い", "Japanese"), ("ラーメン最高！", "Japanese"), ("이 영화 정말 좋아요", "Hangul"),
        ("Это ужасный фильм", "Cyrillic"), ("यह फिल्म बहुत अच्छी है", "Devanagari"), ("فيلم رائع", "Arabic"),
        ("চমৎকার সিনেমা", "Bengali"), ("Très bon film", "Latin"), ("10/10 👍", None),
    ],
)
def test_dominant_script(text, script):
    assert dominant_script(text) == script


def test_routes_by_script_and_keeps_order(router_dir, chinese_dir):
    router = sentitune.load(router_dir)
    assert router.routes_for(MIXED) == ["zh", "en", "zh", "en", "en", "en", "en"]
    zh, en = sentitune.load(chinese_dir), sentitune.load()
    proba = router.predict_proba(MIXED)
    zh_rows, en_rows = [0, 2], [1, 3, 4, 5, 6]
    assert zh.temperature == 1.7 and en.temperature != 1.0 and router.temperature == 1.0
    np.testing.assert_allclose(proba[zh_rows], zh.predict_proba([MIXED[i] for i in zh_rows]), atol=1e-12)
    np.testing.assert_allclose(proba[en_rows], en.predict_proba([MIXED[i] for i in en_rows]), atol=1e-12)
    # the same texts in another order give the same rows back in that order
    np.testing.assert_allclose(router.predict_proba(MIXED[::-1]), proba[::-1], atol=1e-12)


def test_warning_names_the_languages_without_a_route(router_dir):
    router = sentitune.load(router_dir)
    warning = router.unreadable_warning(MIXED)
    assert "2 of 7 texts" in warning and "Japanese" in warning and "Russian" in warning
    assert router.unreadable_warning(["这部电影太好看了", "What a wonderful film", "👍"]) is None


def test_save_writes_a_self_contained_copy(router_dir, tmp_path):
    router = sentitune.load(router_dir)
    copy = router.save(tmp_path / "copy")
    assert json.loads((copy / "sentitune.json").read_text())["options"]["routes"] == {"zh": "zh", "en": "en"}
    np.testing.assert_allclose(sentitune.load(copy).predict_proba(MIXED), router.predict_proba(MIXED), atol=1e-12)
    shutil.rmtree(copy / "zh")
    with pytest.raises(ArtifactError, match="zh/tfidf.joblib"):
        sentitune.load(copy)


def test_train_method_router_composes_a_copy(cli, chinese_dir, tmp_path):
    out = tmp_path / "trained"
    result = cli("train", "--method", "router", "--model", f"zh={chinese_dir},en=default", "--output-dir", out)
    assert result.exit_code == 0, result.stderr
    router = sentitune.load(out)
    assert isinstance(router, RouterModel) and router.temperature == 1.0 and (out / "zh" / "tfidf.joblib").is_file()
    assert router.meta.metrics["val"]["n"] > 0  # scored on the bundled validation split
    assert_one_line_error(cli("train", "--method", "router", "--output-dir", tmp_path / "x"), "zh=PATH,en=PATH")


def test_broken_routes_are_one_line_errors(tmp_path, chinese_dir):
    with pytest.raises(SentituneError, match="unknown route 'fr'"):
        build_router(tmp_path / "a", {"fr": chinese_dir, "en": "default"})
    with pytest.raises(SentituneError, match="needs an 'en' route"):
        build_router(tmp_path / "b", {"zh": chinese_dir})
    loop = build_router(tmp_path / "c", {"zh": chinese_dir, "en": "default"})
    meta = json.loads((loop / "sentitune.json").read_text())
    meta["options"]["routes"]["en"] = "."
    (loop / "sentitune.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="route 'en' leads back"):
        sentitune.load(loop)


def test_default_route_is_the_shipped_default():
    assert DEFAULT_MODEL_DIR == sentitune.DEFAULT_MODEL_PATH.resolve()


def test_shipped_router_reads_chinese_without_a_warning(cli):
    result = cli("predict", "--model-path", SHIPPED_ROUTER, "这部电影太好看了", "太难吃了，再也不会来了", "I loved it")
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    assert [line.split()[0] for line in result.stdout.strip().splitlines()[-3:]] == ["POSITIVE", "NEGATIVE", "POSITIVE"]
    result = cli("predict", "--model-path", SHIPPED_ROUTER, "この映画は面白い")
    assert "warning:" in result.stderr and "Japanese" in result.stderr


def test_shipped_router_gives_the_default_probabilities_on_english():
    texts = ["a gorgeous, witty, seductive movie", "the plot is a mess", "not bad at all"]
    np.testing.assert_allclose(sentitune.load(SHIPPED_ROUTER).predict_proba(texts), sentitune.load().predict_proba(texts), atol=1e-12)
