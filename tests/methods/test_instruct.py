"""`instruct` and `zero-shot` on the real SmolLM2-135M-Instruct: prompts, label scoring, training, reload."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

import sentitune
from sentitune.config import ServeConfig, TrainConfig
from sentitune.data import read_jsonl, sample_path, write_jsonl
from sentitune.errors import SentituneError
from sentitune.methods.hf import load_tokenizer
from sentitune.methods.instruct import IGNORE, InstructModel, pad_examples
from sentitune.methods.prompts import EXPERT, build_prompt, load_template
from sentitune.training import run_training
from sentitune.serving.app import create_app
from sentitune.zoo import resolve_model

MODEL = "smollm2-135m-instruct"
POSITIVE = ["I absolutely love this product, it is wonderful!", "What a fantastic movie, I enjoyed every minute.",
            "Great service and delicious food, highly recommended."]
NEGATIVE = ["I hate this product, it is terrible.", "What an awful movie, a complete waste of time.",
            "Horrible service and disgusting food, never again."]
QWEN3_GENERATION = (  # the generation-prompt part of Qwen3's chat template, verbatim
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model(MODEL))


@pytest.fixture(scope="module")
def zero_shot_dir(tmp_path_factory):
    """`sentitune train --method zero-shot`: an artifact, temperature calibrated on a small val file."""
    tmp = tmp_path_factory.mktemp("zero-shot")
    write_jsonl(read_jsonl(sample_path("val"))[::22], tmp / "val.jsonl")  # 16 rows, both labels
    cfg = TrainConfig(method="zero-shot", model=MODEL, prompt_template="plain", max_length=96,
                      train_file=str(sample_path("train")), val_file=str(tmp / "val.jsonl"),
                      max_train_samples=8, output_dir=str(tmp / "model"))
    return run_training(cfg)


@pytest.fixture(scope="module")
def instruct(tmp_path_factory):
    """A LoRA instruct model trained a few steps, kept in memory, and its saved artifact."""
    tmp = tmp_path_factory.mktemp("instruct")
    cfg = TrainConfig(method="instruct", model=MODEL, prompt_template="chat", max_length=64, max_steps=6,
                      batch_size=4, learning_rate=2e-4, max_train_samples=24, eval_strategy="no", logging_steps=2,
                      output_dir=str(tmp / "model"))
    model = InstructModel().fit(read_jsonl(sample_path("train")), None, cfg)
    return model, model.save(cfg.output_dir)


# ------------------------------------------------------------------------------ prompts
@pytest.mark.parametrize("name, ending, lead", [
    ("expert", "Text to analyze: I loved it<|im_end|>\n<|im_start|>assistant\n", ""),
    ("chat", "<|im_start|>user\nText to analyze: I loved it<|im_end|>\n<|im_start|>assistant\n", ""),
    ("plain", "Review: I loved it\nSentiment:", " "),
])
def test_templates_end_where_the_answer_begins(tokenizer, name, ending, lead):
    prompt = build_prompt(load_template(name), tokenizer)
    words = ("Negative", "Positive") if name == "plain" else ("NEGATIVE", "POSITIVE")
    assert prompt.render("I loved it").endswith(ending) and prompt.answers == (lead + words[0], lead + words[1])
    if name == "chat":
        assert "<|im_start|>system\nYou are a sentiment analysis AI." in prompt.render("x")


def test_template_fallbacks_and_qwen3_thinking_off(tokenizer):
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None  # no chat template: the literal ChatML form of reference 001
    assert build_prompt(load_template("chat"), bare).render("ok") == (
        "<|im_start|>system\nYou are a sentiment analysis AI. Analyze the following text and classify the sentiment "
        "as positive or negative.\n<|im_end|>\n<|im_start|>user\nText to analyze: ok\n<|im_end|>\n<|im_start|>assistant\n"
    )
    qwen3 = copy.deepcopy(tokenizer)
    qwen3.chat_template = QWEN3_GENERATION
    assert build_prompt(load_template("expert"), qwen3).render("ok").endswith("assistant\n<think>\n\n</think>\n\n")
    no_system = copy.deepcopy(tokenizer)  # Mistral-style: a system turn is refused, so it joins the user turn
    refuse = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}"
    no_system.chat_template = refuse + QWEN3_GENERATION
    rendered = build_prompt(load_template("chat"), no_system).render("ok")
    assert "<|im_start|>user\nYou are a sentiment analysis AI." in rendered
    assert "as positive or negative.\n\nText to analyze: ok<|im_end|>" in rendered


def test_template_from_file(tmp_path, tokenizer):
    path = tmp_path / "tweet.txt"
    path.write_text("Tweet: {text}\nMood:\n")
    template = load_template(str(path))
    assert template.spec == "Tweet: {text}\nMood:" and load_template(template.spec) == template  # as artifacts store it
    prompt = build_prompt(template, tokenizer)
    assert prompt.render("so happy") == "Tweet: so happy\nMood:" and prompt.answers[1] == " POSITIVE"
    (tmp_path / "bad.txt").write_text("Classify this review.")
    with pytest.raises(SentituneError, match=r"has no \{text\} placeholder"):
        load_template(str(tmp_path / "bad.txt"))
    with pytest.raises(SentituneError, match="not one of expert, chat, plain nor a file"):
        load_template("no-such-template.txt")
    assert EXPERT.startswith("You are a sentiment analysis expert.") and EXPERT.endswith("Text to analyze: {text}")


# ------------------------------------------------------------------------------ zero-shot
def test_zero_shot_scores_the_labels_in_the_right_columns(zero_shot_dir):
    model = sentitune.load(zero_shot_dir)
    assert (model.meta.method, model.meta.prompt_template, model.meta.metrics["val"]["n"]) == ("zero-shot", "plain", 16)
    proba = model.predict_proba(POSITIVE + NEGATIVE)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    assert proba[:3, 1].mean() > proba[3:, 1].mean() + 0.2, proba
    raw = model.logits(POSITIVE[:1])
    assert (raw < 0).all()  # log-probabilities of the answer tokens
    np.testing.assert_allclose(sentitune.load(zero_shot_dir).logits(POSITIVE[:1]), raw, atol=1e-5)


def test_long_texts_are_cut_not_the_prompt(zero_shot_dir):
    model = sentitune.load(zero_shot_dir)
    [ids] = model.prompt_ids(["word " * 500])
    assert len(ids) + len(model.answer_ids[1]) + 1 <= model.meta.max_length
    assert model.tokenizer.decode(ids).endswith("\nSentiment:")


# ------------------------------------------------------------------------------ instruct
def test_loss_is_on_the_answer_tokens_only(instruct):
    model, _ = instruct
    rows = [{"text": "Loved it", "label": 1}, {"text": "A dull, overlong film that goes nowhere", "label": 0}]
    examples = model.examples(rows)
    batch = pad_examples([{"input_ids": i, "labels": y} for i, y in zip(examples["input_ids"], examples["labels"])],
                         model.tokenizer.pad_token_id)
    eos = model.tokenizer.eos_token_id
    for i, (row, prompt) in enumerate(zip(rows, model.prompt_ids([r["text"] for r in rows]))):
        answer = model.answer_ids[row["label"]] + [eos]
        n = len(prompt) + len(answer)
        assert batch["input_ids"][i, :n].tolist() == prompt + answer
        assert batch["labels"][i, :n].tolist() == [IGNORE] * len(prompt) + answer
        assert (batch["labels"][i, n:] == IGNORE).all() and batch["attention_mask"][i].sum() == n
    # the token scored at inference is the first token of the trained answer
    assert [ids[0] for ids in model.label_ids] == [a[len(model.shared_ids)] for a in model.answer_ids]


def test_instruct_trains_saves_and_reloads_identically(instruct):
    model, out = instruct
    assert model.meta.training["global_steps"] == 6 and model.meta.options["lora"]["enabled"]
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    texts = POSITIVE[:2] + NEGATIVE[:2]
    reloaded = sentitune.load(out)  # adapter merged into the base for inference
    np.testing.assert_allclose(reloaded.logits(texts), model.logits(texts), atol=1e-4)
    assert reloaded.predict(texts) == model.predict(texts)


def test_explanations_and_the_api_reasoning_field(instruct):
    model, _ = instruct
    reasons = model.explain(["The staff were lovely and the room was spotless."], ["POSITIVE"])
    prefix = "The text is positive because "
    assert reasons[0].startswith(prefix) and len(reasons[0]) > len(prefix) + 3, reasons
    with TestClient(create_app(ServeConfig(auth_enabled=False), model)) as client:
        body = client.post("/api/v1/analyze", json={"text": "Awful, broke on day one.", "include_reasoning": True}).json()
    assert body["reasoning"].startswith(f"The text is {body['predicted_sentiment'].lower()} because")


@pytest.mark.skipif(torch.cuda.is_available(), reason="4-bit loading works where there is CUDA")
def test_load_in_4bit_without_cuda_is_one_clear_error(tmp_path):
    cfg = TrainConfig(method="instruct", model=MODEL, load_in_4bit=True)
    with pytest.raises(SentituneError, match="4-bit QLoRA needs a CUDA GPU and bitsandbytes; this machine has no CUDA"):
        InstructModel().fit([{"text": "fine", "label": 1}], None, cfg)
    proc = subprocess.run([sys.executable, "-m", "sentitune", "train", "--method", "instruct", "--load-in-4bit",
                           "--output-dir", tmp_path / "q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: 4-bit QLoRA needs a CUDA GPU"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
