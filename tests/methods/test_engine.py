"""The inference engine under every transformer predictor: length buckets, the traced graph, bf16, settings errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import sentitune
from sentitune.errors import SentituneError
from sentitune.methods.engine import length_batches


def test_length_batches_cover_every_text_once_within_both_caps():
    lengths = [5, 120, 7, 7, 30, 1, 64, 9, 128, 12] * 7
    batches = length_batches(lengths, max_batch=8, max_tokens=256)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for idx in batches:
        padded = len(idx) * max(lengths[i] for i in idx)
        assert len(idx) <= 8 and (padded <= 256 or len(idx) == 1)
    flat = [lengths[i] for idx in batches for i in idx]
    assert flat == sorted(flat)  # similar lengths share a batch


def test_a_batch_is_cut_where_padding_would_cost_more_than_a_call():
    near, apart = [10] * 16 + [11] * 16, [10] * 16 + [60] * 16
    assert [len(b) for b in length_batches(near, 64, 4096, call_cost_tokens=48)] == [32]  # 16 x 1 token
    assert [len(b) for b in length_batches(apart, 64, 4096, call_cost_tokens=48)] == [16, 16]  # 16 x 50 tokens
    assert [len(b) for b in length_batches(apart, 64, 4096, call_cost_tokens=10_000)] == [32]
    rng = np.random.default_rng(0)
    tweets = rng.integers(5, 55, size=32).tolist()
    batches = length_batches(tweets, 32, 4096)
    padded = sum(len(b) * max(tweets[i] for i in b) for b in batches)
    assert padded < 1.6 * sum(tweets) and len(batches) <= 6


def test_bucketed_scores_come_back_in_input_order(sample_test):
    model = sentitune.load()
    texts = [r["text"] for r in sample_test[:60]]
    bucketed = model.logits(texts)
    one_by_one = np.concatenate([model.logits([t]) for t in texts])
    np.testing.assert_allclose(bucketed, one_by_one, atol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_cpu_model_predicts_through_a_traced_graph_that_scores_as_the_eager_model(sample_test, precision):
    model = sentitune.load(sentitune.ENGLISH_MODEL_PATH, precision=precision)
    tokenizer = model.tokenizer
    texts = [r["text"] for r in sample_test if len(tokenizer(r["text"])["input_ids"]) <= model.meta.max_length][:48]
    traced = model.logits(texts)  # padded length buckets of several sizes, none seen when tracing
    assert model.forward_runner[1] == "TorchScript graph"
    with torch.inference_mode():
        eager = np.concatenate([model.model(**tokenizer([t], return_tensors="pt")).logits.float().numpy() for t in texts])
    np.testing.assert_allclose(traced, eager, atol=1e-4 if precision == "fp32" else 0.05)
    model.to("cpu")  # placed again: the graph is made again from the weights as they are then
    assert model._forward is None and model.forward_runner[1] == "TorchScript graph"


def test_bf16_agrees_with_fp32(sample_test):
    texts = [r["text"] for r in sample_test]
    fp32 = sentitune.load().logits(texts)
    bf16 = sentitune.load(precision="bf16")
    assert bf16.model.dtype == torch.bfloat16
    logits = bf16.logits(texts)
    # measured 0.997 here and 0.999 on the default model's 7,155-row held-out split
    assert (logits.argmax(1) == fp32.argmax(1)).mean() >= 0.99
    assert np.abs(logits - fp32).max() < 0.2


def test_bad_settings_are_one_line_errors(monkeypatch):
    with pytest.raises(SentituneError, match="precision must be fp32, bf16 or auto, got 'fp16'"):
        sentitune.load(precision="fp16")
    monkeypatch.setenv("SENTITUNE_PRECISION", "int4")
    with pytest.raises(SentituneError, match="SENTITUNE_PRECISION must be fp32, bf16 or auto"):
        sentitune.load()


def test_threads_setting_reaches_torch_and_a_bad_one_exits_2():
    # in a child process: the setting is process-wide
    run = lambda env, *a: subprocess.run([sys.executable, *a], capture_output=True, text=True, env=env)  # noqa: E731
    env = {**os.environ, "SENTITUNE_THREADS": "1"}
    code = "import sentitune, torch; sentitune.load(); print(torch.get_num_threads())"
    assert run(env, "-c", code).stdout.strip() == "1"
    bad = run({**env, "SENTITUNE_THREADS": "all"}, "-m", "sentitune", "predict", "fine")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: SENTITUNE_THREADS must be a positive whole number, got 'all'"
