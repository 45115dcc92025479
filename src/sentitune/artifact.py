"""The sentitune artifact: a directory with ``sentitune.json`` beside the weights.

Every method writes the same metadata file, so loading, evaluation, serving and export only read
``sentitune.json`` to know which method class restores the weights. The metadata is a pydantic
model; unknown keys written by newer versions are kept (``extra="allow"``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentitune.errors import ArtifactError

FORMAT_VERSION = 1
META_FILE = "sentitune.json"
LABELS = ("NEGATIVE", "POSITIVE")  # index 0 / 1 everywhere: label ids, logits columns, probabilities


class ArtifactMeta(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    format_version: int = FORMAT_VERSION
    method: str
    base_model: str | None = None
    labels: list[str] = Field(default_factory=lambda: list(LABELS))
    max_length: int = 256
    prompt_template: str | None = None
    temperature: float = 1.0  # calibration: probabilities = softmax(logits / temperature)
    backend: str = "torch"  # "torch", "onnx", "sklearn", ...
    files: list[str] = Field(default_factory=list)  # weight files that must exist to load
    options: dict[str, Any] = Field(default_factory=dict)  # method-specific (lora config, pooling, ...)
    training: dict[str, Any] = Field(default_factory=dict)  # data summary, hyper-parameters
    metrics: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    sentitune_version: str | None = None


def write_meta(directory: str | Path, meta: ArtifactMeta) -> Path:
    from sentitune import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta.sentitune_version = __version__
    path = directory / META_FILE
    path.write_text(json.dumps(meta.model_dump(), indent=2, ensure_ascii=False) + "\n")
    return path


def read_meta(directory: str | Path) -> ArtifactMeta:
    """Read and validate ``sentitune.json``; raise ArtifactError naming what is wrong."""
    directory = Path(directory)
    if not directory.exists():
        raise ArtifactError(f"model directory not found: {directory}")
    if not directory.is_dir():
        raise ArtifactError(f"model path is not a directory: {directory}")
    path = directory / META_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a sentitune model: {META_FILE} is missing")
    try:
        raw = json.loads(path.read_text())
        meta = ArtifactMeta.model_validate(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is corrupt: not valid JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ArtifactError(f"{path} is invalid: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if meta.format_version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format_version {meta.format_version}; this sentitune reads up to {FORMAT_VERSION}"
        )
    missing = [f for f in meta.files if not (directory / f).is_file()]
    if missing:
        raise ArtifactError(f"{directory} is incomplete: missing {', '.join(missing)}")
    empty = [f for f in meta.files if (directory / f).stat().st_size == 0]
    if empty:
        raise ArtifactError(f"{directory} is corrupt: empty file {', '.join(empty)}")
    return meta


def update_meta(directory: str | Path, **changes: Any) -> ArtifactMeta:
    meta = read_meta(directory)
    meta = meta.model_copy(update=changes)
    write_meta(directory, meta)
    return meta
