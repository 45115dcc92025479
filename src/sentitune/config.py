"""Settings in one place: pydantic-settings models read from YAML, then the environment, then flags.

Precedence (highest first): CLI flag > environment variable > YAML file > default. Training
variables are ``SENTITUNE_<FIELD>`` (``SENTITUNE_LEARNING_RATE=1e-4``, nested ``SENTITUNE_LORA__R=8``);
serving uses the plain names deployments expect (``MODEL_PATH``, ``API_KEY`` ...); process-wide
settings (threads, precision, model cache, Redis) are :class:`RuntimeSettings`, read through
:func:`runtime_settings`. An empty variable counts as unset.

This is the only module that reads the environment, and it imports nothing from sentitune but
errors, so any layer may import it. Every setting is validated when it is read: a bad one is a
one-line :class:`SentituneError` naming the variable, key or flag it came from.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict, SettingsError

from sentitune.errors import SentituneError

T = TypeVar("T", bound=BaseModel)


# ------------------------------------------------------------------------------ value checks
def _network(value: str) -> str:
    ipaddress.ip_network(value, strict=False)  # ValueError names a bad address
    return value


def _redis_url(value: str) -> str:
    if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("not a Redis URL")
    return value


def _device(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        raise ValueError("unknown device")
    return value


def _comma_list(value: Any) -> Any:
    """A variable holds a list as ``a, b, c``; YAML and flags give a real list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


RedisUrl = Annotated[str, AfterValidator(_redis_url)]
CommaList = Annotated[list[str], NoDecode]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
REDIS_URL_HELP = "a redis://, rediss:// or unix:// URL"
REDIS_URL_DOC = "Keep the score cache in Redis, shared by workers and replicas (needs the [cache] extra)"


class _Layered(BaseSettings):
    """Constructed directly, a config holds exactly the arguments given; :func:`load_config` layers
    YAML, environment and flags (and knows which one a bad value came from)."""

    model_config = SettingsConfigDict(
        extra="forbid", protected_namespaces=(), env_ignore_empty=True, populate_by_name=True
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *other_sources, **named_sources):
        return (init_settings,)


# -------------------------------------------------------------------------------------- training
class LoraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Train a LoRA adapter instead of every weight")
    r: int = Field(16, description="Adapter rank")
    alpha: int = Field(32, description="Adapter scaling (alpha / r multiplies its update)")
    dropout: float = Field(0.1, description="Dropout on the adapter's input")
    # "all-linear" = every linear projection (q/k/v/o and the MLP), peft's own shorthand.
    target_modules: list[str] | str = Field("all-linear", description="Modules that get an adapter, or all-linear")


LongTextStrategy = Literal["head", "head+tail", "chunks"]


class LongTextConfig(BaseModel):
    """How a transformer classifier reads a text longer than its ``max_length`` tokens (stored in
    sentitune.json as ``long_text``; absent: ``head``). Only such texts take the extra path."""

    model_config = ConfigDict(extra="forbid")

    strategy: LongTextStrategy = Field("head", description="head: the first tokens; head+tail: the first "
                                       "head_tokens and the last ones; chunks: mean logits over windows")
    head_tokens: int = Field(32, ge=0, description="head+tail: tokens kept from the start; the rest of the window is the end")
    max_windows: int = Field(4, ge=1, description="chunks: most windows per text (evenly spaced, first and last kept)")


class TrainConfig(_Layered):
    """`sentitune train`: each field's variable is ``SENTITUNE_<FIELD>`` (``SENTITUNE_LORA__R`` nested)."""

    model_config = SettingsConfigDict(env_prefix="SENTITUNE_", env_nested_delimiter="__")

    method: str = Field("classifier", description="classifier, head, instruct, tfidf, lexicon or zero-shot")
    model: str = Field("all-minilm-l6-v2", description="Zoo name, hub id or local path")
    model_size: str | None = Field(None, description='Key into model_sizes (e.g. "0.6b", "4b")')
    model_sizes: dict[str, str] = Field(default_factory=dict, description="Size name -> model, for --model-size")
    train_file: str | None = Field(None, description="Training data; unset: the bundled sample's train split")
    val_file: str | None = Field(None, description="Validation data; unset: none, or the sample's split when training on the sample")
    output_dir: str = Field("runs/model", description="Where the model artifact is written")
    max_length: int = Field(128, description="Tokens per text; longer texts are truncated")
    max_train_samples: int | None = Field(None, description="Train on at most this many rows")

    num_epochs: float = Field(3.0, description="Passes over the training data")
    min_epochs: float = Field(0.0, description="Early stopping never stops before this many epochs")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps; -1: num_epochs decides")
    learning_rate: float = Field(5e-5, description="Peak learning rate")
    batch_size: int = Field(32, description="Texts per training step on each device")
    eval_batch_size: int = Field(64, description="Texts per evaluation step")
    gradient_accumulation_steps: int = Field(1, description="Steps whose gradients add up before each update")
    warmup_steps: int = Field(0, description="Steps of learning-rate warm-up")
    warmup_ratio: float = Field(0.0, description="Warm-up as a share of all steps (when warmup_steps is 0)")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "linear", description="Learning-rate schedule after warm-up"
    )
    weight_decay: float = Field(0.01, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, description="Gradient clipping norm")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = Field(
        "auto", description="auto: bf16 (else fp16) on a GPU; bf16 autocast on a CPU with AMX or AVX512-BF16, else fp32"
    )
    eval_strategy: Literal["epoch", "steps", "no"] = Field("epoch", description="When to evaluate on the validation split")
    eval_steps: int | None = Field(None, description="Steps between evaluations (eval_strategy steps)")
    save_steps: int | None = Field(None, description="Steps between checkpoints")
    save_total_limit: int = Field(2, description="Checkpoints kept")
    early_stopping_patience: int | None = Field(None, description="Evaluations without improvement before stopping")
    metric_for_best_model: str = Field("f1", description="Validation metric that picks the best checkpoint")
    class_weights: bool = Field(False, description="Weight the loss by inverse class frequency")
    seed: int = Field(42, description="Random seed")
    logging_steps: int = Field(20, description="Steps between log lines")
    resume_from_checkpoint: str | None = Field(None, description="Checkpoint directory to resume from, or latest")

    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA adapter settings")
    load_in_4bit: bool = Field(False, description="QLoRA: a 4-bit NF4 base model (GPU)")
    # "model" = the model's own pooling (sentence-transformers config, else last token for
    # decoders, mean for encoders)
    pooling: Literal["mean", "cls", "lasttoken", "model"] = Field("model", description="head: embedding pooling")
    head_c: float = Field(10.0, gt=0, description="head: inverse regularisation strength of the logistic regression")
    ngram_buckets: int = Field(0, ge=0, description="static: hashed token-bigram buckets of a linear n-gram part added to the MLP (0: none; the fast preset: 262144)")
    prompt_template: str | None = Field(None, description="instruct / zero-shot: prompt template name or file")
    reasoning: bool = Field(False, description="instruct / zero-shot: `predict --json` adds a short generated explanation")
    calibrate: bool = Field(True, description="Fit temperature on the validation split at the end of training")
    teacher: str | None = Field(None, description="distill: the sentitune artifact (directory) whose probabilities the student learns")
    unlabeled: list[str] = Field(default_factory=list, description="distill: files of extra texts the teacher labels (labels in them are ignored)")
    distill_temperature: float = Field(2.0, gt=0, description="distill: softening temperature of teacher and student")
    distill_alpha: float = Field(0.5, ge=0, le=1, description="distill: weight of the teacher's KL term; the rest is gold cross-entropy")
    long_text: LongTextConfig | None = Field(
        None, description="classifier: how texts over max_length are read at inference (training reads their head)"
    )

    def resolved_model(self) -> str:
        if self.model_size:
            sizes = {k.lower(): v for k, v in self.model_sizes.items()}  # 0.6B and 0.6b alike
            if self.model_size.lower() not in sizes:
                raise SentituneError(
                    f"unknown --model-size {self.model_size!r}; this config offers {', '.join(self.model_sizes) or 'none'}"
                )
            return sizes[self.model_size.lower()]
        return self.model


# --------------------------------------------------------------------------------------- serving
def _positive(default: int, description: str) -> Any:
    """A whole-number setting of 1 or more."""
    return Field(default, ge=1, description=description)


class ServeConfig(_Layered):
    """`sentitune serve`: each field's variable is its name in upper case (``API_KEY`` for api_keys)."""

    model_config = SettingsConfigDict(env_prefix="")

    model_path: str | None = Field(
        None, min_length=1, description="Model directory from `sentitune train` or `export onnx`; unset: the shipped model",
        json_schema_extra={"expected": "a model directory"},
    )
    device: Annotated[str, AfterValidator(_device)] = Field(
        "auto", description="Where the model runs; auto: the GPU when there is one",
        json_schema_extra={"expected": "auto, cpu, cuda, cuda:N or mps"},
    )
    host: str = Field(
        "127.0.0.1", min_length=1, description="Interface to bind; 0.0.0.0 for every interface",
        json_schema_extra={"expected": "a host name or IP address"},
    )
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on")
    workers: int = _positive(1, "Server processes; each loads its own copy of the model")
    max_length: int = _positive(256, "Tokens per text; longer texts are truncated")
    batch_size: int = _positive(32, "Micro-batching: most texts per model call")
    # 0 = no waiting: a batch is whatever queued while the model was busy, which gave the best
    # throughput and latency in benchmarks/load.py
    max_wait_ms: float = Field(
        0.0, ge=0, description="Micro-batching: longest a text waits for others (ms); 0: take what queued while the model was busy"
    )
    micro_batching: bool = Field(True, description="Score concurrent requests together in one model call")
    model_workers: int | None = Field(
        None, gt=0, description="Model calls that run at once, each on its own thread; unset: one per core "
        "(a call alone gets every core, calls at once share them)",
    )
    cache_size: int = Field(
        10_000, ge=0, description="LRU cache of recent texts' scores (repeats skip the model); 0 turns it off"
    )
    redis_url: RedisUrl | None = Field(None, description=REDIS_URL_DOC, json_schema_extra={"expected": REDIS_URL_HELP})
    redis_ttl: int = _positive(86_400, "Seconds a score stays in the Redis cache")

    api_keys: CommaList = Field(
        default_factory=list, validation_alias="API_KEY", json_schema_extra={"expected": "keys, comma-separated"},
        description="Accepted X-API-Key values; set them in the environment, not in a file",
    )
    auth_enabled: bool = Field(
        True, description="Require an API key on every request (`--no-auth` turns it off for local use)"
    )
    key_id_secret: str | None = Field(None, description="HMAC secret for the client ids written to logs")
    rate_limit_per_hour: int = _positive(1000, "Requests per API key per hour")
    auth_failures_per_minute: int = _positive(20, "Failed authentications per client per minute before it is refused")
    trusted_proxies: CommaList = Field(
        default_factory=list, json_schema_extra={"expected": "IP addresses or CIDR networks, comma-separated"},
        description="Proxies whose X-Forwarded-For header is trusted to name the client",
    )
    max_text_chars: int = _positive(5000, "Longest text accepted (characters)")
    max_batch_texts: int = _positive(64, "Most texts in one batch request")
    max_body_bytes: int = _positive(1_000_000, "Largest request body (bytes)")
    max_queue: int = _positive(256, "Texts waiting for the model before the server sheds load with 503 + Retry-After")
    max_queue_wait_s: float = Field(
        0.5, gt=0, description="Seconds of model work queued (texts waiting or being scored, at the recent "
        "seconds per text) past which the server sheds load with 503 + Retry-After, so latency stays bounded "
        "when each model call slows",
    )
    shed_hold_s: float = Field(
        0.25, ge=0, description="Seconds a shed request is held before its 503, so clients that retry at once "
        "cannot make refusals the server's main work; 0 answers at once",
    )
    limit_concurrency: int = _positive(1024, "Most concurrent connections; more are refused with 503")
    timeout_keep_alive_s: float = Field(5.0, gt=0, description="Seconds an idle keep-alive connection stays open")
    header_timeout_s: float = Field(10.0, gt=0, description="Seconds a client has to send the request headers")
    max_header_bytes: int = _positive(16384, "Largest request head (bytes)")
    max_headers: int = _positive(100, "Most request headers")
    log_level: LogLevel = Field("INFO", description="Level of the JSON log lines on stderr")

    @field_validator("api_keys", "trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [_network(v) for v in value]

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def to_worker_env(self) -> dict[str, str]:
        """Environment entries handing this resolved config to ``workers > 1`` worker processes
        (uvicorn starts them fresh; they rebuild the app with :meth:`from_worker_env`)."""
        return {WORKER_ENV: self.model_dump_json()}

    def export_to_workers(self) -> None:
        """Put :meth:`to_worker_env` into this process's environment, which worker processes inherit."""
        os.environ.update(self.to_worker_env())

    @classmethod
    def from_worker_env(cls) -> ServeConfig:
        """In a worker process: the config its parent handed over with :meth:`to_worker_env`."""
        raw = os.environ.get(WORKER_ENV)
        if not raw:
            raise SentituneError(f"{WORKER_ENV} is not set; start workers through `sentitune serve`")
        return cls.model_validate_json(raw)


# The resolved ServeConfig as JSON, for worker processes (internal: not a user setting).
WORKER_ENV = "SENTITUNE_SERVE_CONFIG"


# ----------------------------------------------------------------------------------- process-wide
class RuntimeSettings(BaseSettings):
    """Settings of every command and worker (threads, precision, model cache, Redis), environment only."""

    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True, frozen=True)

    threads: int | None = Field(
        None, gt=0, validation_alias="SENTITUNE_THREADS",
        description="CPU threads for torch and onnxruntime; unset: torch's default (the physical cores)",
    )
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "auto", validation_alias="SENTITUNE_PRECISION",
        description="PyTorch inference precision; auto: bf16 where the CPU has AMX or AVX512-BF16 and bf16 gives fp32's label on >= 99.5% of held-out texts, else fp32",
    )
    cache_dir: Path = Field(
        Path("~/.cache/sentitune"), validate_default=True, validation_alias="SENTITUNE_CACHE",
        description="Where zoo models are converted and kept (under models/)",
    )
    redis_url: RedisUrl | None = Field(
        None, validation_alias="REDIS_URL", description=REDIS_URL_DOC, json_schema_extra={"expected": REDIS_URL_HELP}
    )
    redis_ttl: int = Field(86_400, ge=1, validation_alias="REDIS_TTL", description="Seconds a score stays in the Redis cache")

    @field_validator("cache_dir")
    @classmethod
    def _home(cls, value: Path) -> Path:
        return value.expanduser()


RUNTIME_VARS = tuple(str(f.validation_alias) for f in RuntimeSettings.model_fields.values())


def runtime_settings() -> RuntimeSettings:
    """The process-wide settings, validated (a bad one raises a one-line SentituneError).

    Cached per value of the variables, so a changed environment (a test's monkeypatch) is seen."""
    return _runtime_settings(tuple(sorted((k, v) for k, v in os.environ.items() if k.upper() in RUNTIME_VARS)))


@functools.lru_cache(maxsize=16)
def _runtime_settings(_environment: tuple) -> RuntimeSettings:
    try:
        return RuntimeSettings()
    except ValidationError as exc:
        raise SentituneError(_explain(RuntimeSettings, exc.errors()[0], _subject(RuntimeSettings, "env", None))) from None


# ----------------------------------------------------------------------------------- loading
def load_config(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """YAML file (optional) < environment < ``overrides`` (CLI flags; None values are ignored;
    ``"lora.r"`` reaches into a nested model)."""
    layers = {
        "flag": _nest({k: v for k, v in (overrides or {}).items() if v is not None}),
        "env": _environment(cls),
        "file": _read_yaml(Path(path)) if path else {},
    }
    data = _merge(_merge(layers["file"], layers["env"]), layers["flag"])
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        subject = _subject(cls, _origin(cls, err["loc"], layers), path)
        raise SentituneError(_explain(cls, err, subject)) from None


def _subject(cls: type[BaseModel], origin: str, path: Any) -> Callable[[list[str]], str]:
    """How an error names a setting: its variable, its flag or its key in the file."""
    if origin == "env":
        return lambda names: env_var(cls, names)
    if origin == "flag":
        return lambda names: f"{'.'.join(names)} (command line)"
    return lambda names: f"{'.'.join(names)} in {path}"


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SentituneError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SentituneError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise SentituneError(f"config file {path} must be a mapping of settings")
    return data


def _environment(cls: type[BaseModel]) -> dict[str, Any]:
    """The class's variables that are set, keyed by field name."""
    if not issubclass(cls, BaseSettings):
        return {}
    try:
        found = EnvSettingsSource(cls)()
    except SettingsError as exc:  # a list or mapping variable that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = env_var(cls, [field.group(1)]) if field else "a variable"
        raise SentituneError(f"{name} must be JSON ({exc.__cause__ or exc})") from None
    by_alias = _field_by_alias(cls)
    return {by_alias.get(key, key): value for key, value in found.items()}


def _field_by_alias(cls: type[BaseModel]) -> dict[str, str]:
    """Environment variable name -> field name, for fields read under a name of their own."""
    return {f.validation_alias: name for name, f in cls.model_fields.items() if isinstance(f.validation_alias, str)}


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *heads, last = key.split(".")
        node = out
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    return out


def _merge(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for key, value in high.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _names(cls: type[BaseModel], loc: tuple) -> list[str]:
    """Field names along an error location (aliases resolved, list indices dropped)."""
    by_alias = _field_by_alias(cls)
    names = [str(p) for p in loc if isinstance(p, str)]
    return [by_alias.get(names[0], names[0]), *names[1:]] if names else []


def _origin(cls: type[BaseModel], loc: tuple, layers: dict[str, dict]) -> str:
    names = _names(cls, loc)
    for origin in ("flag", "env"):
        node: Any = layers[origin]
        for name in names:
            if not isinstance(node, dict) or name not in node:
                break
            node = node[name]
        else:
            return origin
    return "file"


def env_var(cls: type[BaseModel], names: list[str] | str) -> str:
    """The environment variable of a field (``names``: the field, or the path to a nested one)."""
    names = [names] if isinstance(names, str) else list(names)
    field = cls.model_fields.get(names[0])
    if field is not None and isinstance(field.validation_alias, str):
        return field.validation_alias
    prefix = cls.model_config.get("env_prefix", "")
    nested = (prefix + "__".join(names)).upper()
    return nested if len(names) == 1 or nested in {k.upper() for k in os.environ} else (prefix + names[0]).upper()


def _field(cls: type[BaseModel], names: list[str]) -> FieldInfo | None:
    model: Any = cls
    field = None
    for name in names:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or name not in model.model_fields:
            return None
        field = model.model_fields[name]
        model = field.annotation
    return field


def _explain(cls: type[BaseModel], err: dict, subject: Callable[[list[str]], str]) -> str:
    names = _names(cls, err["loc"])
    where = subject(names) if names else "a setting"
    if err["type"] == "extra_forbidden":
        return f"unknown setting {where}"
    field = _field(cls, names)
    wanted = expected(field) if field is not None else None
    if wanted is None:
        return f"{where}: {err['msg']}"
    return f"{where} must be {wanted}, got {err['input']!r}"


def expected(field: FieldInfo) -> str | None:
    """What a field accepts, in words ("a whole number from 1 to 65535")."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "expected" in extra:
        return str(extra["expected"])
    kind = field.annotation
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # unwrap `X | None`
        kinds = [a for a in typing.get_args(kind) if a is not type(None)]
        kind = kinds[0] if len(kinds) == 1 else None
    if typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) is Literal:
        options = [str(o) for o in typing.get_args(kind)]
        return ", ".join(options[:-1]) + " or " + options[-1]
    if kind is bool:
        return "true or false"
    if kind in (int, float):
        return _number(field, "whole number" if kind is int else "number")
    if kind is str:
        return "non-empty text" if _bound(field, "min_length") else "text"
    if kind is Path:
        return "a directory"
    if typing.get_origin(kind) is list:
        return "a list"
    return None


def _bound(field: FieldInfo, name: str) -> Any:
    """A constraint given to Field (ge=1 ...); pydantic keeps each as a metadata object."""
    return next((getattr(m, name) for m in field.metadata if getattr(m, name, None) is not None), None)


def _number(field: FieldInfo, noun: str) -> str:
    low, above, high = _bound(field, "ge"), _bound(field, "gt"), _bound(field, "le")
    if low is not None and high is not None:
        return f"a {noun} from {low} to {high}"
    if above == 0 or (low == 1 and noun == "whole number"):
        return f"a positive {noun}"
    if low is not None:
        return f"a {noun}, {low} or more"
    return f"a {noun}"
