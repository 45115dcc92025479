"""Settings: YAML < environment < flags, every value validated with a one-line error naming where it
came from, process-wide settings read fresh, and the docs rendered from the same fields."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sentitune.cli import app
from sentitune.config import RuntimeSettings, ServeConfig, TrainConfig, load_config, runtime_settings
from sentitune.errors import SentituneError

ROOT = Path(__file__).resolve().parents[1]


def test_yaml_then_env_then_flags(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1.0e-3\nbatch_size: 8\nlora:\n  enabled: true\n  r: 4\n")
    monkeypatch.setenv("SENTITUNE_BATCH_SIZE", "16")
    cfg = load_config(TrainConfig, path, {"learning_rate": 2e-5, "lora.r": 8, "seed": None})
    assert cfg.learning_rate == 2e-5  # flag beats file
    assert cfg.batch_size == 16  # env beats file
    assert cfg.lora.enabled and cfg.lora.r == 8 and cfg.seed == 42


def test_nested_training_variable_merges_with_the_file(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("lora:\n  enabled: true\n  r: 4\n")
    monkeypatch.setenv("SENTITUNE_LORA__R", "12")
    cfg = load_config(TrainConfig, path)
    assert cfg.lora.enabled and cfg.lora.r == 12
    monkeypatch.setenv("SENTITUNE_LORA__R", "twelve")
    with pytest.raises(SentituneError, match=r"^SENTITUNE_LORA__R must be a whole number, got 'twelve'$"):
        load_config(TrainConfig, path)


def test_serving_env_names(monkeypatch):
    monkeypatch.setenv("API_KEY", "k1, k2")
    monkeypatch.setenv("BATCH_SIZE", "7")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.7")
    cfg = load_config(ServeConfig)
    assert cfg.api_keys == ["k1", "k2"] and cfg.batch_size == 7
    assert cfg.trusted_proxies == ["10.0.0.0/8", "192.168.1.7"]


def test_serving_precedence(tmp_path, monkeypatch):
    path = tmp_path / "deploy.yaml"
    path.write_text("port: 9000\nworkers: 3\nmax_queue: 10\nlog_level: debug\n")
    monkeypatch.setenv("WORKERS", "2")
    monkeypatch.setenv("MAX_QUEUE", "20")
    cfg = load_config(ServeConfig, path, {"workers": 4, "port": None})
    assert (cfg.port, cfg.workers, cfg.max_queue, cfg.log_level) == (9000, 4, 20, "DEBUG")


def test_empty_variables_mean_unset(monkeypatch):
    # an empty value was parsed as JSON and crashed with a traceback
    for name in ("PORT", "MODEL_PATH", "API_KEY", "MAX_LENGTH", "SENTITUNE_THREADS", "SENTITUNE_CACHE", "REDIS_URL"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("SENTITUNE_BATCH_SIZE", "")
    cfg = load_config(ServeConfig)
    assert (cfg.port, cfg.model_path, cfg.api_keys, cfg.max_length) == (8000, None, [], 256)
    assert load_config(TrainConfig).batch_size == 32
    settings = runtime_settings()
    assert settings.threads is None and settings.redis_url is None
    assert settings.cache_dir == Path.home() / ".cache" / "sentitune"


BAD_SERVE_SETTINGS = [
    ("PORT", "99999", "PORT must be a whole number from 1 to 65535, got '99999'"),
    ("PORT", "0", "PORT must be a whole number from 1 to 65535, got '0'"),
    ("MAX_LENGTH", "{", "MAX_LENGTH must be a positive whole number, got '{'"),
    ("MAX_LENGTH", "-1", "MAX_LENGTH must be a positive whole number, got '-1'"),
    ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'LOUD'"),
    ("DEVICE", "tpu", "DEVICE must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    ("BATCH_SIZE", "0", "BATCH_SIZE must be a positive whole number, got '0'"),
    ("BATCH_SIZE", "-5", "BATCH_SIZE must be a positive whole number, got '-5'"),
    ("RATE_LIMIT_PER_HOUR", "0", "RATE_LIMIT_PER_HOUR must be a positive whole number, got '0'"),
    ("RATE_LIMIT_PER_HOUR", "-1", "RATE_LIMIT_PER_HOUR must be a positive whole number, got '-1'"),
    ("CACHE_SIZE", "-1", "CACHE_SIZE must be a whole number, 0 or more, got '-1'"),
    ("MAX_WAIT_MS", "-100", "MAX_WAIT_MS must be a number, 0 or more, got '-100'"),
    ("WORKERS", "0", "WORKERS must be a positive whole number, got '0'"),
    ("MICRO_BATCHING", "maybe", "MICRO_BATCHING must be true or false, got 'maybe'"),
    ("TRUSTED_PROXIES", "10.0.0.0/33", "TRUSTED_PROXIES must be IP addresses or CIDR networks, comma-separated, got '10.0.0.0/33'"),
    ("REDIS_URL", "localhost:6379", "REDIS_URL must be a redis://, rediss:// or unix:// URL, got 'localhost:6379'"),
    ("REDIS_TTL", "a day", "REDIS_TTL must be a positive whole number, got 'a day'"),
    ("SENTITUNE_THREADS", "0", "SENTITUNE_THREADS must be a positive whole number, got '0'"),
    ("SENTITUNE_THREADS", "abc", "SENTITUNE_THREADS must be a positive whole number, got 'abc'"),
    ("SENTITUNE_PRECISION", "fp8", "SENTITUNE_PRECISION must be fp32, bf16 or auto, got 'fp8'"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_SERVE_SETTINGS)
def test_serve_refuses_a_bad_setting_before_starting(name, value, message, tmp_path):
    # --model-path to a missing directory: were the setting accepted, serve would stop there, not start
    result = CliRunner().invoke(app, ["serve", "--model-path", str(tmp_path / "missing")], env={name: value})
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {message}\n"


def test_serve_names_the_flag_or_the_file_key(tmp_path):
    missing = str(tmp_path / "missing")
    result = CliRunner().invoke(app, ["serve", "--model-path", missing, "--port", "70000"])
    assert result.stderr == "error: port (command line) must be a whole number from 1 to 65535, got 70000\n"
    path = tmp_path / "deploy.yaml"
    path.write_text("device: tpu\n")
    result = CliRunner().invoke(app, ["serve", "--model-path", missing, "--config", str(path)])
    assert result.stderr == f"error: device in {path} must be auto, cpu, cuda, cuda:N or mps, got 'tpu'\n"
    path.write_text("max_queu: 5\n")
    result = CliRunner().invoke(app, ["serve", "--model-path", missing, "--config", str(path)])
    assert result.stderr == f"error: unknown setting max_queu in {path}\n"


def test_predict_refuses_a_bad_runtime_setting():
    result = CliRunner().invoke(app, ["predict", "fine"], env={"SENTITUNE_PRECISION": "fp8"})
    assert result.exit_code == 2 and result.stderr == "error: SENTITUNE_PRECISION must be fp32, bf16 or auto, got 'fp8'\n"


def test_a_bad_setting_exits_2_with_one_line_and_no_traceback():
    env = {**os.environ, "PORT": "99999"}
    proc = subprocess.run([sys.executable, "-m", "sentitune", "serve"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "error: PORT must be a whole number from 1 to 65535, got '99999'\n"


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


def test_a_list_variable_that_is_not_json_is_one_line(monkeypatch):
    monkeypatch.setenv("SENTITUNE_LORA", "{r: 4")
    with pytest.raises(SentituneError, match=r"^SENTITUNE_LORA must be JSON \(.*\)$"):
        load_config(TrainConfig)


def test_runtime_settings_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTITUNE_CACHE", str(tmp_path / "a"))
    assert runtime_settings().cache_dir == tmp_path / "a"
    monkeypatch.setenv("SENTITUNE_CACHE", str(tmp_path / "b"))  # not frozen by the cache
    monkeypatch.setenv("SENTITUNE_THREADS", "3")
    assert runtime_settings().cache_dir == tmp_path / "b" and runtime_settings().threads == 3
    monkeypatch.setenv("SENTITUNE_CACHE", "~/models-here")
    assert runtime_settings().cache_dir == Path.home() / "models-here"


def test_config_reaches_workers_unchanged(monkeypatch):
    cfg = ServeConfig(api_keys=["k"], port=9001, trusted_proxies=["10.0.0.0/8"], key_id_secret="s", max_queue=3)
    for name, value in cfg.to_worker_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PORT", "1234")  # a worker takes its parent's resolved config, not the environment again
    assert ServeConfig.from_worker_env() == cfg


# ------------------------------------------------------------------------------------- docs
def _settings_doc():
    spec = importlib.util.spec_from_file_location("settings_doc", ROOT / "scripts" / "settings_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_and_deploy_yaml_match_the_fields():
    doc = _settings_doc()
    assert (ROOT / "configs" / "deploy.yaml").read_text() == doc.deploy_yaml(), "run python scripts/settings_doc.py"
    readme = (ROOT / "README.md").read_text()
    assert doc.readme_section() in readme, "run python scripts/settings_doc.py"
    for cls in (ServeConfig, RuntimeSettings):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"
    names = {f"`{n.upper()}`" for n in ServeConfig.model_fields if n != "api_keys"} | {"`API_KEY`"}
    names |= {f"`{f.validation_alias}`" for f in RuntimeSettings.model_fields.values()}
    assert all(name in readme for name in names)


def test_deploy_yaml_is_a_valid_config_of_every_field():
    path = ROOT / "configs" / "deploy.yaml"
    assert set(yaml.safe_load(path.read_text())) == set(ServeConfig.model_fields)
    assert load_config(ServeConfig, path).host == "0.0.0.0"


def test_only_config_reads_the_environment():
    pattern = re.compile(r"\bos\.environ\b|\bgetenv\b|from os import[^\n]*\benviron\b")
    package = ROOT / "src" / "sentitune"
    readers = [
        f"{path.relative_to(package)}:{n}"
        for path in package.rglob("*.py") if path.name != "config.py" or path.parent != package
        for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)
    ]
    assert readers == [], "read settings through sentitune.config, not the environment"
