"""The `router` method: texts go to the sub-model of their script, probabilities stay the sub-model's.

Real models only: the shipped English model, a tfidf trained on the bundled sample's Weibo rows for
Chinese, and the shipped Chinese router (src/sentitune/models/router), which is the shipped default.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import sentitune
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.router import ENGLISH_MODEL_DIR, RouterModel, build_router
from sentitune.methods.script import dominant_script
from conftest import assert_one_line_error

SHIPPED_ROUTER = ENGLISH_MODEL_DIR.parent / "models" / "router"
ENGLISH = sentitune.ENGLISH_MODEL_PATH
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
    zh, en = sentitune.load(chinese_dir), sentitune.load(ENGLISH)
    proba = router.predict_proba(MIXED)
    zh_rows, en_rows = [0, 2], [1, 3, 4, 5, 6]
    assert zh.temperature == 1.7 and en.temperature != 1.0 and router.temperature == 1.0
    np.testing.assert_allclose(proba[zh_rows], zh.predict_proba([MIXED[i] for i in zh_rows]), atol=1e-12)
    # 1e-6 for the transformer: the same batch can take other kernels from one call to the next on a loaded CPU
    np.testing.assert_allclose(proba[en_rows], en.predict_proba([MIXED[i] for i in en_rows]), atol=1e-6)
    # the same texts in another order give the same rows back in that order
    np.testing.assert_allclose(router.predict_proba(MIXED[::-1]), proba[::-1], atol=1e-6)


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


def test_default_route_is_the_shipped_english_model_and_the_default_is_the_router():
    assert ENGLISH_MODEL_DIR == sentitune.ENGLISH_MODEL_PATH.resolve()
    assert sentitune.DEFAULT_MODEL_PATH.resolve() == SHIPPED_ROUTER.resolve()
    assert sentitune.CHINESE_MODEL_PATH.resolve() == (SHIPPED_ROUTER / "../chinese_mix").resolve()


def test_shipped_router_reads_chinese_without_a_warning(cli):
    result = cli("predict", "--model-path", SHIPPED_ROUTER, "这部电影太好看了", "太难吃了，再也不会来了", "I loved it")
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    assert [line.split()[0] for line in result.stdout.strip().splitlines()[-3:]] == ["POSITIVE", "NEGATIVE", "POSITIVE"]
    result = cli("predict", "--model-path", SHIPPED_ROUTER, "この映画は面白い")
    assert "warning:" in result.stderr and "Japanese" in result.stderr


def test_shipped_router_gives_the_english_probabilities_on_english(shipped):
    texts = ["a gorgeous, witty, seductive movie", "the plot is a mess", "not bad at all"]
    np.testing.assert_allclose(shipped.predict_proba(texts), sentitune.load(ENGLISH).predict_proba(texts), atol=1e-6)


# --- the router as the shipped default --------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped():
    return sentitune.load(precision="fp32")


def test_cli_default_reads_chinese_without_a_warning_and_english_as_the_english_model(cli):
    result = cli("predict", "--json", "这部电影太好看了", "What a wonderful, heartfelt film.")
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    zh, en = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert zh["label"] == "POSITIVE"
    expected = sentitune.load(ENGLISH).predict_proba([en["text"]])[0, 1]
    assert en["probabilities"]["POSITIVE"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("text, language", [("Это ужасный фильм", "Russian"), ("この映画は面白い", "Japanese")])
def test_cli_default_warns_naming_a_language_it_has_no_route_for(cli, text, language):
    result = cli("predict", text)
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and language in warnings[0] and "'en' model scored" in warnings[0]


def test_default_offers_what_callers_read_from_one_model(shipped):
    """What serving (bf16 choice, token check), score (batch_size) and the cache read."""
    english = sentitune.load(ENGLISH)
    caps = shipped.capabilities
    assert caps.tokenizer and caps.batch_size and not caps.explain
    assert shipped.transformer_route() == "en" and shipped.tokenizer is shipped.models["en"].tokenizer
    assert shipped.model is shipped.models["en"].model and next(shipped.model.parameters()).dtype == torch.float32
    assert shipped.meta.max_length == english.meta.max_length == 128  # the English window, not the router file's
    shipped.batch_size = 7
    assert shipped.batch_size == 7 and shipped.models["en"].batch_size == 7
    with pytest.raises(SentituneError, match="no route of this router"):
        shipped.explain(["fine"])
    # the cache keeps the router's (already calibrated) scores: hits give the same probabilities
    texts = ["这部电影太好看了", "What a wonderful film", "这部电影太好看了"]
    cold = shipped.predict_proba(texts)
    shipped.enable_cache(100).to("cpu")
    first = shipped.predict_proba(texts)
    np.testing.assert_allclose(first, cold, atol=1e-6)
    np.testing.assert_allclose(shipped.predict_proba(texts), first, atol=1e-12)  # from the cache
    assert shipped.cache_hits == 4 and shipped.cache_misses == 2
    shipped.enable_cache(0)
    shipped.batch_size = 64


def test_lowering_max_length_reaches_the_english_route(shipped):
    """The server's MAX_LENGTH sets meta.max_length on the model it serves; the router passes it on."""
    english = sentitune.load(ENGLISH)
    english.meta.max_length = 16
    long_text = "The film starts well, but the second half is a slow, confused and tiresome mess. " * 6
    try:
        shipped.meta.max_length = 16
        np.testing.assert_allclose(shipped.logits([long_text]), english.logits([long_text]) / english.temperature, atol=1e-5)
        assert shipped.models["en"].meta.max_length == 16
        shipped.meta.max_length = 4096  # raising it again never lifts a route above its own window
        shipped.logits(["fine"])
        assert shipped.models["en"].meta.max_length == 128
    finally:
        shipped.meta.max_length = 128


def test_precision_reaches_the_english_route():
    bf16 = sentitune.load(precision="bf16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    assert bf16.predict(["这部电影太好看了", "What a wonderful, heartfelt film."]) == ["POSITIVE", "POSITIVE"]


def test_calibrating_a_router_is_refused_in_one_line(cli, tmp_path, router_dir):
    before = (router_dir / "sentitune.json").read_text()
    result = cli("calibrate", "--model-path", router_dir, "--val-file", sentitune.data.sample_path("val"))
    assert_one_line_error(result, "is a router: each of its models keeps its own temperature")
    assert (router_dir / "sentitune.json").read_text() == before


def test_info_says_the_default_is_a_router_and_lists_its_routes(cli):
    result = cli("info")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("default model: a router"))
    routes = [line.strip() for line in lines[start + 1:start + 3]]
    assert routes[0].startswith("zh -> ") and "models/chinese_mix (ensemble" in routes[0]
    assert routes[1].startswith("en -> ") and "default_model (distill: all-minilm-l6-v2" in routes[1]
