import pytest

from sentitune.config import ServeConfig, TrainConfig, load_config
from sentitune.errors import SentituneError


def test_yaml_then_env_then_flags(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1.0e-3\nbatch_size: 8\nlora:\n  enabled: true\n  r: 4\n")
    monkeypatch.setenv("SENTITUNE_BATCH_SIZE", "16")
    cfg = load_config(TrainConfig, path, {"learning_rate": 2e-5, "lora.r": 8, "seed": None})
    assert cfg.learning_rate == 2e-5  # flag beats file
    assert cfg.batch_size == 16  # env beats file
    assert cfg.lora.enabled and cfg.lora.r == 8 and cfg.seed == 42


def test_serving_env_names(monkeypatch):
    monkeypatch.setenv("API_KEY", "k1, k2")
    monkeypatch.setenv("BATCH_SIZE", "7")
    cfg = load_config(ServeConfig)
    assert cfg.api_keys == ["k1", "k2"] and cfg.batch_size == 7


def test_bad_settings_name_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rat: 1\n")
    with pytest.raises(SentituneError, match="learning_rat"):
        load_config(TrainConfig, path)
    with pytest.raises(SentituneError, match="config file not found"):
        load_config(TrainConfig, tmp_path / "none.yaml")
    cfg = TrainConfig(model_size="4b", model_sizes={"0.6b": "Qwen/Qwen3-0.6B"})
    with pytest.raises(SentituneError, match="unknown --model-size '4b'"):
        cfg.resolved_model()
