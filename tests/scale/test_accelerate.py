"""`accelerate launch -m sentitune train`: the same trainer under accelerate, one CPU process here."""

import subprocess
import sys
from pathlib import Path

import sentitune

ROOT = Path(__file__).resolve().parents[2]


def test_accelerate_launch_trains_with_the_unchanged_trainer(tmp_path):
    out = tmp_path / "model"
    proc = subprocess.run(
        [
            sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "configs/accelerate/cpu.yaml"),
            "-m", "sentitune", "train", "--lora", "--max-train-samples", "96", "--max-steps", "3", "--batch-size", "16",
            "--output-dir", str(out),
        ],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = sentitune.load(out)
    assert model.meta.training["global_steps"] == 3
