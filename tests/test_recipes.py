"""The model recipes in configs/: each validates, carries the settings its reference project used,
and runs offline for a step with a stand-in from the zoo (`--model` overrides the recipe's model)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sentitune
from sentitune.config import TrainConfig, load_config
from sentitune.data import write_jsonl
from sentitune.errors import SentituneError
from sentitune.training import run_training

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NOT_RECIPES = {"demo.yaml", "deploy.yaml"}  # the make-demo config and the serving config
ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
QWEN3_SIZES = {"0.6b": "Qwen/Qwen3-0.6B", "4b": "Qwen/Qwen3-4B", "8b": "Qwen/Qwen3-8B"}
QWEN3_EMBEDDING_SIZES = {s: f"Qwen/Qwen3-Embedding-{s.upper()}" for s in ("0.6b", "4b", "8b")}

# recipe -> the settings the issue names (dotted keys reach into `lora`)
EXPECTED = {
    "qwen3-4b-instruct-lora.yaml": {
        "method": "instruct", "model": "Qwen/Qwen3-4B-Instruct-2507", "prompt_template": "expert",
        "lora.enabled": True, "lora.r": 16, "lora.alpha": 32, "lora.dropout": 0.1, "lora.target_modules": ALL_PROJECTIONS,
        "learning_rate": 2e-5, "batch_size": 2, "gradient_accumulation_steps": 16, "num_epochs": 3, "warmup_steps": 100,
    },
    "qwen2-1.5b-instruct-chat-lora.yaml": {
        "method": "instruct", "model": "Qwen/Qwen2-1.5B-Instruct", "prompt_template": "chat",
        "lora.enabled": True, "lora.r": 16, "lora.alpha": 32, "lora.dropout": 0.05, "lora.target_modules": ALL_PROJECTIONS,
        "learning_rate": 2e-4, "lr_scheduler": "cosine", "warmup_ratio": 0.1, "batch_size": 2,
        "gradient_accumulation_steps": 8, "save_steps": 400, "eval_steps": 400, "eval_strategy": "steps",
        "save_total_limit": 3, "early_stopping_patience": 3,
    },
    "qwen3-embedding-head.yaml": {
        "method": "head", "model": "Qwen/Qwen3-Embedding-0.6B", "pooling": "model", "model_sizes": QWEN3_EMBEDDING_SIZES,
    },
    "qwen3-lora.yaml": {
        "method": "classifier", "model": "Qwen/Qwen3-0.6B", "model_sizes": QWEN3_SIZES,
        "lora.enabled": True, "lora.r": 16, "lora.alpha": 32, "lora.target_modules": ALL_PROJECTIONS,
    },
    "distilbert-amazon.yaml": {
        "method": "classifier", "model": "distilbert-base-uncased", "lora.enabled": False, "batch_size": 32,
        "min_epochs": 5, "num_epochs": 10, "early_stopping_patience": 2, "eval_strategy": "epoch",
        "warmup_steps": 500, "lr_scheduler": "linear", "weight_decay": 0.01, "mixed_precision": "fp16",
    },
    "mistral-7b-qlora.yaml": {
        "method": "instruct", "model": "mistralai/Mistral-7B-Instruct-v0.1", "prompt_template": "plain",
        "load_in_4bit": True, "lora.enabled": True, "lora.target_modules": ALL_PROJECTIONS,
    },
}
STAND_INS = {
    "qwen3-4b-instruct-lora.yaml": "tiny-qwen3",
    "qwen2-1.5b-instruct-chat-lora.yaml": "tiny-qwen3",
    "qwen3-embedding-head.yaml": "tiny-qwen3",
    "qwen3-lora.yaml": "tiny-qwen3",
    "distilbert-amazon.yaml": "all-minilm-l6-v2",
    "mistral-7b-qlora.yaml": "smollm2-135m-instruct",
}
def setting(cfg: TrainConfig, dotted: str):
    value = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def test_every_recipe_is_checked():
    assert {p.name for p in CONFIGS.glob("*.yaml")} - NOT_RECIPES == set(EXPECTED) == set(STAND_INS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_has_the_reference_settings(name):
    cfg = load_config(TrainConfig, CONFIGS / name)
    assert {key: setting(cfg, key) for key in EXPECTED[name]} == EXPECTED[name]
    assert "GPU memory" in (CONFIGS / name).read_text()  # each recipe says what it needs


def test_model_size_picks_the_model():
    for size, model in QWEN3_SIZES.items():
        assert load_config(TrainConfig, CONFIGS / "qwen3-lora.yaml", {"model_size": size.upper()}).resolved_model() == model
    with pytest.raises(SentituneError, match="unknown --model-size '2b'; this config offers 0.6b, 4b, 8b"):
        load_config(TrainConfig, CONFIGS / "qwen3-embedding-head.yaml", {"model_size": "2b"}).resolved_model()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, sample_train) -> dict[str, str]:
    """Short texts of both classes, so one step of any stand-in costs seconds."""
    out = tmp_path_factory.mktemp("recipe-data")
    shortest = sorted(sample_train, key=lambda r: len(r["text"]))
    neg, pos = [r for r in shortest if r["label"] == 0], [r for r in shortest if r["label"] == 1]
    write_jsonl(neg[:4] + pos[:4], out / "train.jsonl")
    write_jsonl(neg[4:6] + pos[4:6], out / "val.jsonl")
    return {"train_file": str(out / "train.jsonl"), "val_file": str(out / "val.jsonl")}


def train_recipe(name: str, tmp_path, tiny_data, **overrides) -> Path:
    settings = {"model": STAND_INS[name], "output_dir": str(tmp_path / "run"), "max_steps": 1, "batch_size": 2,
                "eval_batch_size": 4, "gradient_accumulation_steps": 1, **tiny_data, **overrides}
    return run_training(load_config(TrainConfig, CONFIGS / name, settings))


@pytest.mark.parametrize("name", [
    "qwen3-4b-instruct-lora.yaml",
    "qwen2-1.5b-instruct-chat-lora.yaml",
    "qwen3-embedding-head.yaml",
    "qwen3-lora.yaml",
    "distilbert-amazon.yaml",
    pytest.param("mistral-7b-qlora.yaml", marks=pytest.mark.slow),
])
def test_recipe_runs_offline_with_its_stand_in(name, tmp_path, tiny_data):
    overrides = {}  # the DistilBERT recipe's fp16 falls back to fp32 on a CPU, with a warning
    if name == "mistral-7b-qlora.yaml" and not torch.cuda.is_available():
        overrides["load_in_4bit"] = False  # 4-bit needs CUDA (next test)
    out = train_recipe(name, tmp_path, tiny_data, **overrides)
    model = sentitune.load(out)
    recipe = load_config(TrainConfig, CONFIGS / name)
    assert (model.meta.method, model.meta.base_model) == (recipe.method, STAND_INS[name])
    assert model.meta.metrics["val"]["n"] == 4
    assert set(model.predict(["I loved it", "Terrible, never again"])) <= {"POSITIVE", "NEGATIVE"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="4-bit loading works where there is CUDA")
def test_qlora_recipe_on_cpu_says_it_needs_cuda(tmp_path, tiny_data):
    with pytest.raises(SentituneError, match="4-bit QLoRA needs a CUDA GPU"):
        train_recipe("mistral-7b-qlora.yaml", tmp_path, tiny_data)
    assert not (tmp_path / "run" / "sentitune.json").exists()


def test_recipe_through_the_cli(tmp_path, tiny_data):
    """`sentitune train --config RECIPE --model STAND-IN`, as the recipes' comments show it."""
    proc = subprocess.run(
        [sys.executable, "-m", "sentitune", "train", "--config", CONFIGS / "qwen3-embedding-head.yaml",
         "--model", "tiny-qwen3", "--train", tiny_data["train_file"], "--val", tiny_data["val_file"],
         "--output-dir", tmp_path / "head"], capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert sentitune.load(tmp_path / "head").meta.options["pooling"] == "lasttoken"  # a decoder: last token
