"""A training run SIGKILLed mid-epoch and resumed with `--resume-from-checkpoint latest` ends where an
uninterrupted run with the same seed ends."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

import sentitune
from sentitune.data import read_jsonl, sample_path, write_jsonl

pytestmark = pytest.mark.slow
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def train_command(config, output_dir, *extra):
    return [sys.executable, "-m", "sentitune", "train", "--config", str(config), "--output-dir", str(output_dir), *extra]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """MiniLM + LoRA, one epoch of 16 steps, checkpointed every 4; no best-checkpoint selection, so the
    final weights depend on every step, the resumed ones included."""
    root = tmp_path_factory.mktemp("resume")
    write_jsonl(read_jsonl(sample_path("train"))[:128], root / "train.jsonl")
    write_jsonl(read_jsonl(sample_path("val"))[:96], root / "val.jsonl")
    config = root / "recipe.yaml"
    config.write_text(yaml.safe_dump({
        "method": "classifier", "model": "all-minilm-l6-v2", "lora": {"enabled": True},
        "train_file": str(root / "train.jsonl"), "val_file": str(root / "val.jsonl"),
        "num_epochs": 1, "batch_size": 8, "max_length": 64, "learning_rate": 5e-4,
        "eval_strategy": "no", "save_steps": 4, "save_total_limit": 10,
    }))
    return root, config


def test_killed_run_resumes_to_the_same_result(recipe):
    root, config = recipe
    subprocess.run(train_command(config, root / "whole"), check=True, env=ENV, capture_output=True, timeout=600)

    killed = root / "killed"
    proc = subprocess.Popen(train_command(config, killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoints/checkpoint-8/trainer_state.json").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before its second checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-epoch: step 8 of 16
    proc.wait()
    assert not (killed / "sentitune.json").exists(), "the run finished before it was killed"

    resumed = subprocess.run(
        train_command(config, killed, "--resume-from-checkpoint", "latest"), env=ENV, capture_output=True, text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    whole, again = sentitune.load(root / "whole"), sentitune.load(killed)
    assert again.meta.training["global_steps"] == whole.meta.training["global_steps"] == 16
    assert abs(again.meta.metrics["val"]["accuracy"] - whole.meta.metrics["val"]["accuracy"]) <= 0.005
    texts = [r["text"] for r in read_jsonl(sample_path("test"))[:64]]
    np.testing.assert_allclose(again.predict_proba(texts), whole.predict_proba(texts), atol=1e-3)


def test_resume_without_a_checkpoint_is_a_clear_error(recipe, tmp_path):
    _, config = recipe
    proc = subprocess.run(
        train_command(config, tmp_path / "fresh", "--resume-from-checkpoint", "latest"), env=ENV, capture_output=True,
        text=True, timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no complete checkpoint to resume from" in proc.stderr
