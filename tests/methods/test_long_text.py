"""Long-text strategies (sentitune.json ``long_text``) on the shipped all-MiniLM-L6-v2 model: windows
built independently here and scored one by one must give what the batched path gives."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

import sentitune
from sentitune.artifact import META_FILE, read_meta, update_meta
from sentitune.config import LongTextConfig
from sentitune.data import write_jsonl
from sentitune.errors import ArtifactError
from conftest import assert_one_line_error

CHUNKS = LongTextConfig(strategy="chunks", max_windows=8)


@pytest.fixture(scope="module")
def model():
    loaded = sentitune.load(sentitune.ENGLISH_MODEL_PATH)
    loaded.meta.long_text = None
    return loaded


@pytest.fixture(scope="module")
def texts(sample_test, model):
    """(short texts within max_length, one long text of 3 to 8 windows) from the bundled test split."""
    rows = [r["text"] for r in sample_test]
    counts = [len(ids) for ids in model.tokenizer(rows, verbose=False)["input_ids"]]
    short = [t for t, n in zip(rows, counts) if n <= model.meta.max_length][:40]
    long = " ".join(t for t, n in zip(rows, counts) if n > model.meta.max_length)
    content = model.tokenizer(long, add_special_tokens=False)["input_ids"][:700]  # 6 windows of 126
    return short, model.tokenizer.decode(content)


@pytest.fixture
def model_copy(tmp_path):
    out = tmp_path / "model"
    shutil.copytree(sentitune.ENGLISH_MODEL_PATH, out)
    return out


def content_ids(model, text: str) -> list[int]:
    return model.tokenizer(text, add_special_tokens=False)["input_ids"]


@torch.inference_mode()
def alone(model, content: list[int]) -> np.ndarray:
    """Logits of one window scored by itself, with the tokenizer's CLS/SEP around it."""
    tok = model.tokenizer
    ids = torch.tensor([[tok.cls_token_id, *content, tok.sep_token_id]])
    return model.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float().numpy()


def with_strategy(model, long_text, texts):
    model.meta.long_text = long_text
    try:
        return model.logits(texts)
    finally:
        model.meta.long_text = None


def test_chunks_average_the_windows_scored_separately(model, texts):
    short, long = texts
    content = content_ids(model, long)
    budget = model.meta.max_length - 2
    n = math.ceil(len(content) / budget)
    assert 3 <= n <= 8
    # consecutive windows; the last one ends at the text's end
    starts = [i * budget for i in range(n - 1)] + [len(content) - budget]
    expected = np.mean([alone(model, content[s:s + budget]) for s in starts], axis=0)
    got = with_strategy(model, CHUNKS, [short[0], long, short[1]])
    np.testing.assert_allclose(got[1], expected, atol=1e-4)
    head = with_strategy(model, None, [long])[0]
    assert np.abs(got[1] - head).max() > 1e-2  # the windows after the head changed the score


def test_a_window_cap_keeps_the_first_and_last_windows(model, texts):
    _, long = texts
    content = content_ids(model, long)
    budget = model.meta.max_length - 2
    expected = (alone(model, content[:budget]) + alone(model, content[-budget:])) / 2
    got = with_strategy(model, LongTextConfig(strategy="chunks", max_windows=2), [long])
    np.testing.assert_allclose(got[0], expected, atol=1e-4)


def test_head_tail_reads_the_first_and_last_tokens(model, texts):
    _, long = texts
    content = content_ids(model, long)
    tail = model.meta.max_length - 2 - 32
    got = with_strategy(model, LongTextConfig(strategy="head+tail", head_tokens=32), [long])
    np.testing.assert_allclose(got[0], alone(model, content[:32] + content[-tail:]), atol=1e-4)


@pytest.mark.parametrize("long_text", [LongTextConfig(strategy="head+tail"), CHUNKS])
def test_short_texts_score_as_with_head_and_take_no_extra_path(model, texts, long_text):
    short, long = texts
    head = with_strategy(model, None, short)
    model.meta.long_text = long_text
    try:
        windows, owner = model._encode(short)
        assert owner is None and windows == model.tokenizer(short, truncation=True, max_length=128)["input_ids"]
        np.testing.assert_array_equal(model.logits(short), head)  # same batches, same bits
        mixed = model.logits([long, *short])
    finally:
        model.meta.long_text = None
    np.testing.assert_allclose(mixed[1:], head, atol=1e-4)  # batched beside windows: only padding differs


def test_strategy_round_trips_through_sentitune_json(model, model_copy, texts):
    short, long = texts
    update_meta(model_copy, long_text={"strategy": "chunks", "max_windows": 3})
    saved = json.loads((model_copy / META_FILE).read_text())["long_text"]
    assert saved == {"strategy": "chunks", "head_tokens": 32, "max_windows": 3}
    loaded = sentitune.load(model_copy)
    assert loaded.meta.long_text == LongTextConfig(strategy="chunks", max_windows=3)
    assert "long-text strategy `chunks`" in (model_copy / "README.md").read_text()
    np.testing.assert_allclose(
        loaded.logits([long]), with_strategy(model, LongTextConfig(strategy="chunks", max_windows=3), [long]), atol=1e-5)


def test_an_artifact_without_the_setting_reads_the_head(model, model_copy, texts):
    short, long = texts
    meta = json.loads((model_copy / META_FILE).read_text())
    meta.pop("long_text", None)  # as written before the setting existed
    (model_copy / META_FILE).write_text(json.dumps(meta))
    loaded = sentitune.load(model_copy)
    assert loaded.meta.long_text is None
    truncated = model.tokenizer([long], truncation=True, max_length=128)["input_ids"][0]
    np.testing.assert_allclose(loaded.logits([long])[0], alone(model, truncated[1:-1]), atol=1e-4)


def test_bad_strategy_is_a_one_line_error(model_copy, cli):
    meta = json.loads((model_copy / META_FILE).read_text())
    meta["long_text"] = {"strategy": "middle"}
    (model_copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError) as info:
        sentitune.load(model_copy)
    message = str(info.value)
    assert "\n" not in message and "long_text.strategy" in message and "'chunks'" in message
    assert_one_line_error(cli("predict", "--model-path", model_copy, "fine"), "long_text.strategy")
    assert_one_line_error(cli("train", "--long-text", "middle"), "long_text.strategy")


def test_tune_writes_the_most_accurate_strategy(model_copy, sample_test, model, cli, tmp_path):
    counts = [len(ids) for ids in model.tokenizer([r["text"] for r in sample_test], verbose=False)["input_ids"]]
    long_rows = [r for r, n in zip(sample_test, counts) if n > 128][:12]
    short_rows = [r for r, n in zip(sample_test, counts) if n <= 128][:5]
    write_jsonl(long_rows + short_rows, tmp_path / "long.jsonl")
    result = cli("tune", "long-text", "--model-path", model_copy, "--file", tmp_path / "long.jsonl")
    assert result.exit_code == 0, result.stderr
    meta = read_meta(model_copy)
    record = meta.metrics["long_text"]
    assert record["n"] == 12 and set(record["accuracy"]) >= {"head", "chunks (<= 4 windows)"}
    best = max(record["accuracy"].values())
    assert record["accuracy"][record["chosen"]] == best  # the first (cheapest) of the most accurate
    assert next(s for s, a in record["accuracy"].items() if a == best) == record["chosen"]
    assert meta.long_text is not None and record["chosen"] in result.stdout

    write_jsonl(short_rows, tmp_path / "short.jsonl")
    result = cli("tune", "long-text", "--model-path", model_copy, "--file", tmp_path / "short.jsonl")
    assert_one_line_error(result, "no text longer than the model's 128 tokens")


def test_onnx_export_reads_long_texts_as_pytorch_does(model_copy, texts, tmp_path):
    from sentitune.export.onnx import export_onnx

    short, long = texts
    update_meta(model_copy, long_text=CHUNKS.model_dump())
    exported = sentitune.load(export_onnx(model_copy, tmp_path / "onnx"))
    assert exported.meta.method == "onnx" and exported.meta.long_text == CHUNKS
    reference = sentitune.load(model_copy)
    batch = [short[0], long, *short[1:6]]
    np.testing.assert_allclose(exported.logits(batch), reference.logits(batch), atol=1e-3)
    exported.meta.long_text = reference.meta.long_text = None  # and under head the two agree too
    np.testing.assert_allclose(exported.logits(batch), reference.logits(batch), atol=1e-3)


def test_hf_export_warns_and_says_the_pipeline_reads_the_head(model_copy, tmp_path):
    from sentitune.export.hf import export_hf

    update_meta(model_copy, long_text=CHUNKS.model_dump())
    with pytest.warns(UserWarning, match="a transformers pipeline reads only their first 128 tokens"):
        out = export_hf(model_copy, tmp_path / "hf")
    assert json.loads((out / "config.json").read_text())["sentitune_long_text"] == CHUNKS.model_dump()
    assert "A transformers `pipeline` cannot do this" in (out / "README.md").read_text()
    assert sentitune.load(out).meta.long_text == CHUNKS  # sentitune still applies it
