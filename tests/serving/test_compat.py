"""Hugging Face's formats through the live server: TEI's /predict and the Inference API's POST /,
driven by the real ``huggingface_hub.InferenceClient`` with the shipped default model."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from huggingface_hub import InferenceClient, constants
from serving_helpers import KEY, OTHER_KEY, assert_error, live_server, post

import sentitune
from sentitune.config import ServeConfig

TEXTS = [
    "I absolutely love this product!",
    "Terrible service, never again.",
    "Wonderful film, I loved every minute.",
    "It broke after a day.",
    "The staff were friendly and the room was spotless.",
    "What a waste of money.",
]


@pytest.fixture(scope="module")
def api():
    config = ServeConfig(api_keys=[KEY, OTHER_KEY], max_text_chars=2000, max_batch_texts=8)
    with live_server(config) as url:
        yield url


def analyze_labels(url: str, texts: list[str]) -> list[str]:
    r = post(url, "/api/v1/analyze/batch", {"texts": texts})
    assert r.status_code == 200, r.text
    return [x["predicted_sentiment"] for x in r.json()["results"]]


def test_inference_client_text_classification_agrees_with_analyze(api, monkeypatch):
    # offline mode makes the client refuse every URL, this loopback one included
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    client = InferenceClient(base_url=api, api_key=KEY)  # sends Authorization: Bearer <key>
    outputs = [client.text_classification(t) for t in TEXTS]
    assert [out[0].label for out in outputs] == analyze_labels(api, TEXTS)
    assert {o.label for o in outputs[0]} == {"POSITIVE", "NEGATIVE"}
    for out in outputs:  # both labels, highest first, probabilities summing to one
        assert out[0].score >= out[1].score and out[0].score + out[1].score == pytest.approx(1.0)
    calibrated = post(api, "/api/v1/analyze", {"text": TEXTS[0]}).json()["confidence"]
    assert outputs[0][0].score == pytest.approx(calibrated, abs=1e-6)
    [top] = client.text_classification(TEXTS[1], top_k=1)
    assert top.label == "NEGATIVE"
    raw = client.text_classification(TEXTS[0], function_to_apply="none")
    # logits / temperature: their difference is the log-odds of the calibrated probability
    assert raw[0].score - raw[1].score == pytest.approx(np.log(calibrated / (1 - calibrated)), abs=1e-4)


def test_predict_has_tei_shapes(api):
    r = post(api, "/predict", {"inputs": TEXTS[0]})
    assert r.status_code == 200, r.text
    single = r.json()
    assert [p["label"] for p in single] == ["POSITIVE", "NEGATIVE"] and single[0]["score"] > 0.5
    batch = post(api, "/predict", {"inputs": TEXTS[:3]}).json()
    nested = post(api, "/predict", {"inputs": [[t] for t in TEXTS[:3]]}).json()
    assert batch == nested and len(batch) == 3 and batch[0] == single
    assert [row[0]["label"] for row in batch] == analyze_labels(api, TEXTS[:3])
    assert post(api, "/", {"inputs": TEXTS[0]}).json() == [single]  # the Inference API nests even one text
    # GET / (the page) and POST / share a path: a 405 there names both (Starlette named only one)
    r = httpx.request("DELETE", f"{api}/")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"


def test_raw_scores_are_logits_over_temperature(api):
    body = post(api, "/predict", {"inputs": TEXTS[:2], "raw_scores": True}).json()
    precision = httpx.get(f"{api}/api/v1/health").json()["model"]["path"].split()[0]  # the server's chosen path
    model = sentitune.load(precision=precision)
    expected = np.asarray(model.logits(TEXTS[:2])) / model.temperature
    for row, z in zip(body, expected):
        scores = {p["label"]: p["score"] for p in row}
        assert [scores[label] for label in model.labels] == pytest.approx(list(z), abs=1e-4)
        # softmax of the raw scores is the calibrated probability /api/v1/analyze reports
    probs = post(api, "/predict", {"inputs": TEXTS[0]}).json()
    z = expected[0]
    assert max(probs, key=lambda p: p["score"])["score"] == pytest.approx(np.exp(z).max() / np.exp(z).sum(), abs=1e-6)


def test_predict_rejects_bad_inputs_with_one_line(api):
    assert_error(post(api, "/predict", {"inputs": ""}), 400, "inputs is empty")
    assert_error(post(api, "/predict", {"inputs": ["fine", "   "]}), 400, "inputs[1] is empty")
    assert_error(post(api, "/predict", {"inputs": ["fine"] * 9}), 400, "limit is 8")
    assert_error(post(api, "/predict", {"inputs": [["a text", "a pair"]]}), 400, "inputs.0 is a text pair")
    assert_error(post(api, "/predict", {"inputs": [["one", "two", "three"]]}), 400, "limit is 1")
    assert_error(post(api, "/predict", {"inputs": 123}), 400, "inputs")
    assert_error(post(api, "/predict", {"inputs": "ok", "parameters": {"top_k": 0}}), 400, "top_k")
    long_text = "good " * 400  # under max_text_chars, over the model's 128-token window
    assert_error(post(api, "/predict", {"inputs": long_text, "truncate": False}), 400, "tokens; the model reads")
    assert post(api, "/predict", {"inputs": long_text}).status_code == 200  # truncated by default


def test_truncate_false_holds_each_text_to_its_routes_window(api):
    # the default model is a router: Chinese goes to a tfidf route (no token window), English to the
    # 128-token classifier; the English tokenizer alone would count this text at 500+ tokens
    chinese = "这部电影非常好看，演员的表演很精彩，我还想再看一遍。" * 20
    english = "good " * 400
    [[top, _]] = post(api, "/", {"inputs": chinese, "truncate": False}).json()
    assert top["label"] == "POSITIVE"
    r = post(api, "/predict", {"inputs": ["fine", chinese, english], "truncate": False})
    assert_error(r, 400, "inputs[2] has 402 tokens; the model reads 128 (send truncate: true)")


def test_bearer_key_meets_the_same_checks(api):
    def bearer(key):
        return {"Authorization": f"Bearer {key}"}

    ok = httpx.post(f"{api}/api/v1/analyze", json={"text": "lovely"}, headers=bearer(KEY))
    assert ok.status_code == 200
    assert_error(httpx.post(f"{api}/predict", json={"inputs": "lovely"}, headers=bearer("wrong-key")), 401, "invalid")
    assert_error(post(api, "/predict", {"inputs": "lovely"}, key=None), 401, "missing X-API-Key")
    schemes = httpx.get(f"{api}/openapi.json").json()["components"]["securitySchemes"].values()
    assert {"type": "http", "scheme": "bearer"} in [{k: s[k] for k in ("type", "scheme") if k in s} for s in schemes]


def test_predict_counts_each_text_against_the_limit(tfidf_model_dir):
    config = ServeConfig(model_path=str(tfidf_model_dir), api_keys=[KEY], rate_limit_per_hour=5)
    with live_server(config) as url:
        assert post(url, "/predict", {"inputs": ["good", "bad", "fine"]}).status_code == 200
        headers = {"Authorization": f"Bearer {KEY}"}  # the same key as a bearer token shares the limit
        assert httpx.post(f"{url}/", json={"inputs": "good"}, headers=headers).status_code == 200
        assert_error(post(url, "/predict", {"inputs": ["good", "bad"]}), 429, "one per text")
        assert post(url, "/predict", {"inputs": "good"}).status_code == 200
