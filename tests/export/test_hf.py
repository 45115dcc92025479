"""`sentitune export hf`: the shipped English model as a plain transformers directory; the shipped
default (a router) exports its English route, with a warning."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import yaml

import sentitune
from sentitune.errors import ArtifactError, SentituneError
from sentitune.export.hf import export_hf
from sentitune.methods.lexicon import LexiconModel
from conftest import assert_one_line_error, free_port

ENGLISH = sentitune.ENGLISH_MODEL_PATH


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_hf(ENGLISH, tmp_path_factory.mktemp("hf") / "model")


@pytest.fixture(scope="module")
def reference(sample_test):
    """The source artifact's labels and probabilities on the bundled held-out split."""
    model = sentitune.load(ENGLISH)
    texts = [r["text"] for r in sample_test]
    return texts, model.predict(texts), model.predict_proba(texts)


def test_directory_is_plain_transformers_with_named_labels(exported):
    config = json.loads((exported / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "NEGATIVE", "1": "POSITIVE"}
    assert config["label2id"] == {"NEGATIVE": 0, "POSITIVE": 1}
    assert config["sentitune_temperature"] == sentitune.load(ENGLISH).temperature
    assert (exported / "model.safetensors").is_file() and (exported / "tokenizer.json").is_file()
    assert not (exported / "adapter_config.json").exists() and not (exported / "sentitune.json").exists()  # merged
    assert not list(exported.glob(".export-*"))  # no temporary directory left behind
    card = (exported / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n", 2)[1])
    assert header["library_name"] == "transformers" and header["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert f"{config['sentitune_temperature']:.4f}" in card and "truncation=True" in card


@pytest.mark.slow
def test_pipeline_gives_the_artifacts_labels(exported, reference):
    from transformers import pipeline

    texts, labels, _ = reference
    classify = pipeline("text-classification", model=str(exported), device="cpu")
    got = [r["label"] for r in classify(texts, truncation=True, batch_size=32)]
    # The pipeline truncates at 128 tokens; the artifact reads long texts in chunks (its long_text):
    # every row as the artifact reads heads, and every short row as the artifact itself
    head = sentitune.load(ENGLISH)
    head.meta.long_text = None
    assert len(texts) > 300 and got == head.predict(texts)
    short = [len(ids) <= 128 for ids in head.tokenizer(texts, verbose=False)["input_ids"]]
    assert sum(short) > 250 and [g for g, s in zip(got, short) if s] == [lab for lab, s in zip(labels, short) if s]


@pytest.mark.slow
def test_sentitune_loads_the_export_with_its_calibration(exported, reference):
    texts, labels, proba = reference
    model = sentitune.load(exported)
    assert model.meta.max_length == 128 and model.temperature == sentitune.load(ENGLISH).temperature
    assert model.predict(texts) == labels
    np.testing.assert_allclose(model.predict_proba(texts), proba, atol=1e-5)


def test_the_default_router_exports_its_english_route_and_says_so(exported, tmp_path):
    with pytest.warns(UserWarning, match=r"router .* only its 'en' route .* other routes \(zh\)"):
        out = export_hf(None, tmp_path / "default")
    assert json.loads((out / "config.json").read_text()) == json.loads((exported / "config.json").read_text())
    texts = ["What a wonderful, heartfelt film.", "It broke after a day."]
    np.testing.assert_allclose(sentitune.load(out).predict_proba(texts), sentitune.load(ENGLISH).predict_proba(texts), atol=1e-5)


@pytest.mark.parametrize("method", ["tfidf", "lexicon"])
def test_non_transformer_methods_are_one_line_errors(cli, method, tfidf_model_dir, tmp_path):
    source = tfidf_model_dir if method == "tfidf" else LexiconModel().save(tmp_path / "lexicon")
    result = cli("export", "hf", "--model-path", source, "--out", tmp_path / "out")
    assert_one_line_error(result, "only transformer classifiers")
    assert not (tmp_path / "out").exists()


def test_foreign_directories_are_one_line_errors(tmp_path):
    from sentitune.zoo import prepare

    with pytest.raises(ArtifactError, match="nor a transformers sequence classifier.*BertModel"):
        sentitune.load(prepare("all-minilm-l6-v2"))  # an encoder without a classification head
    three = tmp_path / "three"
    three.mkdir()
    (three / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                   "id2label": {"0": "negative", "1": "neutral", "2": "positive"}}))
    with pytest.raises(ArtifactError, match="two-label"):
        sentitune.load(three)


def test_unreachable_hub_id_is_one_line(cli):
    """Offline (the test environment sets HF_HUB_OFFLINE=1), a hub id not in the cache is named in one line."""
    with pytest.raises(SentituneError, match="sentitune-test/no-such-model.*Hugging Face Hub id.*offline"):
        sentitune.load("sentitune-test/no-such-model")
    result = cli("predict", "--model-path", "sentitune-test/no-such-model", "hello")
    assert_one_line_error(result, "sentitune-test/no-such-model")



def test_serve_answers_from_a_plain_transformers_directory(exported, reference):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "sentitune", "serve", "--model-path", str(exported), "--no-auth",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        texts, labels, _ = reference
        r = httpx.post(f"{url}/api/v1/analyze/batch", json={"texts": texts[:20]}, timeout=60)
        assert r.status_code == 200, r.text
        assert [x["predicted_sentiment"] for x in r.json()["results"]] == labels[:20]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
