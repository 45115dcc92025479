"""Decoder LLMs as sequence classifiers: SmolLM2 (Llama) and tiny-qwen3 (Qwen3), LoRA and full.

Each case trains a few steps on the bundled sample, then checks what a decoder head gets wrong
when padding or saving is mishandled: the same logits in a batch as one by one (the head reads
the last non-pad token), a trailing end-of-turn token that the head actually reads, and a reload
that predicts exactly as the model did before saving (the new head travels with the adapter).
"""

import numpy as np
import pytest
from safetensors import safe_open

import sentitune
from sentitune.config import LoraConfig, TrainConfig
from sentitune.methods.classifier import SequenceClassifier
from sentitune.methods.hf import ADAPTER_FILES

TEXTS = [
    "a delightful surprise from start to finish",
    "utterly boring and far too long, I want my money back",
    "ok",
    "The battery died after two days.",
]

CASES = [
    pytest.param("smollm2-135m-instruct", True, marks=pytest.mark.slow, id="smollm2-lora"),
    pytest.param("tiny-qwen3", True, id="tiny-qwen3-lora"),
    pytest.param("tiny-qwen3", False, id="tiny-qwen3-full"),
]


@pytest.mark.parametrize("model_name, lora", CASES)
def test_decoder_classifier_trains_pads_saves_and_reloads_exactly(tmp_path, sample_train, model_name, lora):
    cfg = TrainConfig(
        method="classifier", model=model_name, output_dir=str(tmp_path / "run"), max_steps=2, batch_size=4,
        max_length=32, learning_rate=1e-3, eval_strategy="no", lora=LoraConfig(enabled=lora),
    )
    shortest = sorted(sample_train, key=lambda r: len(r["text"]))  # a CPU step costs per token
    rows = [r for r in shortest if r["label"] == 0][:4] + [r for r in shortest if r["label"] == 1][:4]
    model = SequenceClassifier().fit(rows, None, cfg)
    tokenizer = model.tokenizer
    assert model.meta.training["global_steps"] == 2

    # a pad token distinct from eos, and the head told which one it is
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.model.config.pad_token_id == tokenizer.pad_token_id

    # padding-invariance: a batch of different lengths scores each text as it scores alone
    batch = model.logits(TEXTS)
    alone = np.concatenate([model.logits([t]) for t in TEXTS])
    np.testing.assert_allclose(batch, alone, atol=1e-5)

    # the head reads a trailing end-of-turn token (with pad == eos it would skip it and score the
    # text as if the token were not there)
    turn = "great value" + tokenizer.eos_token
    assert not np.allclose(model.logits([turn]), model.logits(["great value"]), atol=1e-6)

    out = model.save(tmp_path / "artifact")
    if lora:  # only the adapter is saved, and the new `score` head is inside it
        assert all((out / f).is_file() for f in ADAPTER_FILES) and not (out / "model.safetensors").exists()
        with safe_open(out / "adapter_model.safetensors", "pt") as f:
            assert any(k.endswith("score.weight") for k in f.keys())
    else:
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()

    reloaded = sentitune.load(out)
    np.testing.assert_allclose(reloaded.logits(TEXTS), batch, atol=1e-5)
    assert reloaded.predict(TEXTS) == model.predict(TEXTS)
