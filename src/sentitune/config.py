"""Configuration as pydantic models, read from YAML, overridden by environment, then by CLI flags.

Precedence (highest first): CLI flag > environment variable > YAML file > default.
Training variables are ``SENTITUNE_<FIELD>`` (``SENTITUNE_LEARNING_RATE=1e-4``); serving uses the
plain names deployments expect (``MODEL_PATH``, ``API_KEY``, ``BATCH_SIZE`` ...).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentitune.errors import SentituneError

T = TypeVar("T", bound=BaseModel)


class LoraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.1
    # "all-linear" = every linear projection (q/k/v/o and the MLP), peft's own shorthand.
    target_modules: list[str] | str = "all-linear"


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    method: str = "classifier"
    model: str = "all-minilm-l6-v2"  # zoo name, hub id or local path
    model_size: str | None = None  # key into model_sizes (e.g. "0.6b", "4b")
    model_sizes: dict[str, str] = Field(default_factory=dict)
    train_file: str | None = None  # default: the bundled sample's train split
    val_file: str | None = None
    output_dir: str = "runs/model"
    max_length: int = 128
    max_train_samples: int | None = None

    num_epochs: float = 3.0
    min_epochs: float = 0.0  # early stopping never stops before this many epochs
    max_steps: int = -1
    learning_rate: float = 5e-5
    batch_size: int = 32
    eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"  # auto: bf16/fp16 on GPU, fp32 on CPU
    eval_strategy: Literal["epoch", "steps", "no"] = "epoch"
    eval_steps: int | None = None
    save_steps: int | None = None
    save_total_limit: int = 2
    early_stopping_patience: int | None = None
    metric_for_best_model: str = "f1"
    class_weights: bool = False
    seed: int = 42
    logging_steps: int = 20
    resume_from_checkpoint: str | None = None

    lora: LoraConfig = Field(default_factory=LoraConfig)
    load_in_4bit: bool = False
    # head: embedding pooling; "model" = the model's own (sentence-transformers config, else last
    # token for decoders, mean for encoders). instruct / zero-shot: prompt template name or file
    pooling: Literal["mean", "cls", "lasttoken", "model"] = "model"
    prompt_template: str | None = None
    reasoning: bool = False  # instruct / zero-shot: `predict --json` adds a short generated explanation
    calibrate: bool = True  # fit temperature on the validation split at the end of training

    def resolved_model(self) -> str:
        if self.model_size:
            sizes = {k.lower(): v for k, v in self.model_sizes.items()}  # 0.6B and 0.6b alike
            if self.model_size.lower() not in sizes:
                raise SentituneError(
                    f"unknown --model-size {self.model_size!r}; this config offers {', '.join(self.model_sizes) or 'none'}"
                )
            return sizes[self.model_size.lower()]
        return self.model


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_path: str | None = None  # default: the shipped model
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_length: int = 256
    batch_size: int = 32  # micro-batching: most requests per model call
    # micro-batching: longest a request waits for company. 0 = no waiting: a batch is whatever queued
    # while the model was busy, which gave the best throughput and latency in benchmarks/load.py
    max_wait_ms: float = 0.0
    micro_batching: bool = True
    cache_size: int = 10_000  # LRU cache of recent texts' scores; 0 turns it off
    api_keys: list[str] = Field(default_factory=list)
    auth_enabled: bool = True
    rate_limit_per_hour: int = 1000
    max_text_chars: int = 5000
    max_batch_texts: int = 64
    max_body_bytes: int = 1_000_000
    log_level: str = "INFO"


# Serving reads the names deployments already use; training is namespaced.
SERVE_ENV = {
    "MODEL_PATH": "model_path", "DEVICE": "device", "MAX_LENGTH": "max_length", "BATCH_SIZE": "batch_size",
    "API_KEY": "api_keys", "LOG_LEVEL": "log_level", "PORT": "port", "HOST": "host", "WORKERS": "workers",
    "RATE_LIMIT_PER_HOUR": "rate_limit_per_hour", "MAX_WAIT_MS": "max_wait_ms", "MICRO_BATCHING": "micro_batching",
    "CACHE_SIZE": "cache_size",
}


def _env_overrides(cls: type[BaseModel]) -> dict[str, Any]:
    if cls is ServeConfig:
        names = SERVE_ENV
    else:
        names = {f"SENTITUNE_{f.upper()}": f for f in cls.model_fields}
    out: dict[str, Any] = {}
    for env, field in names.items():
        if env in os.environ:
            value: Any = os.environ[env]
            if field == "api_keys":
                value = [k.strip() for k in value.split(",") if k.strip()]
            elif value[:1] in "[{":
                value = json.loads(value)
            out[field] = value
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """YAML file (optional) < environment < ``overrides`` (CLI flags; None values are ignored)."""
    data: dict[str, Any] = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise SentituneError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SentituneError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise SentituneError(f"config file {path} must be a mapping of settings")
    data.update(_env_overrides(cls))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if "." in key:  # "lora.r" -> nested
            head, tail = key.split(".", 1)
            data.setdefault(head, {})[tail] = value
        else:
            data[key] = value
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"]))
        raise SentituneError(f"invalid setting {where}: {err['msg']}" + (f" (in {path})" if path else "")) from None
