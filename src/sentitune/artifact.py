"""The sentitune artifact: a directory with ``sentitune.json`` beside the weights.

Every method writes the same metadata file, so loading, evaluation, serving and export only read
``sentitune.json`` to know which method class restores the weights. The metadata is a pydantic
model; keys it does not know (written by older or newer versions) are ignored on read.

``files`` names what must exist to load; ``digests`` holds the size and sha256 of each such file
as it was written, so a truncated or bit-flipped weight file is reported by name at load instead
of loading silently or failing deep inside a deserializer.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sentitune._version import __version__
from sentitune.atomic import atomic_write_text
from sentitune.card import write_card
from sentitune.config import LongTextConfig
from sentitune.errors import ArtifactError

FORMAT_VERSION = 1
META_FILE = "sentitune.json"
LABELS = ("NEGATIVE", "POSITIVE")  # index 0 / 1 everywhere: label ids, logits columns, probabilities
HASH_CHUNK = 1 << 20  # sha256 reads files in 1 MiB pieces: a multi-GB checkpoint never sits in memory


def _inside(name: str) -> str:
    """``name`` if it is a relative path that stays inside the artifact directory."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not name or name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        raise ValueError(f"file {name!r} is outside the model directory")
    return name


class FileDigest(BaseModel):
    size: int
    sha256: str


class ArtifactMeta(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    format_version: int = FORMAT_VERSION
    method: str
    base_model: str | None = None
    max_length: int = 256
    prompt_template: str | None = None
    long_text: LongTextConfig | None = None  # texts over max_length tokens; None: their head (as before it existed)
    temperature: float = 1.0  # calibration: probabilities = softmax(logits / temperature)
    files: list[str] = Field(default_factory=list)  # files that must exist to load
    digests: dict[str, FileDigest] = Field(default_factory=dict)  # file -> size and sha256 at save
    options: dict[str, Any] = Field(default_factory=dict)  # method-specific (lora config, pooling, ...)
    training: dict[str, Any] = Field(default_factory=dict)  # data summary, hyper-parameters
    metrics: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    sentitune_version: str | None = None

    @field_validator("temperature")
    @classmethod
    def _positive_temperature(cls, value: float) -> float:
        # softmax(logits / T): T <= 0 or NaN turns every probability into NaN or flips the labels
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"must be a positive finite number, got {value}")
        return value

    @field_validator("files")
    @classmethod
    def _files_inside(cls, value: list[str]) -> list[str]:
        return [_inside(name) for name in value]

    @field_validator("digests")
    @classmethod
    def _digests_inside(cls, value: dict[str, FileDigest]) -> dict[str, FileDigest]:
        for name in value:
            _inside(name)
        return value


def file_digest(path: Path) -> FileDigest:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            sha.update(chunk)
    return FileDigest(size=path.stat().st_size, sha256=sha.hexdigest())


def write_meta(directory: str | Path, meta: ArtifactMeta) -> Path:
    """Write ``sentitune.json`` (atomically), recording the digest of every file in ``meta.files``,
    and the model card README.md rendered from it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta.sentitune_version = __version__
    meta.digests = {name: file_digest(directory / name) for name in meta.files}
    write_card(directory, meta)  # README.md is rendered from the metadata, never edited; sentitune.json stays last
    return atomic_write_text(directory / META_FILE, json.dumps(meta.model_dump(), indent=2, ensure_ascii=False) + "\n")


def _parse(path: Path) -> ArtifactMeta:
    try:
        return ArtifactMeta.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is corrupt: not valid JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ArtifactError(f"{path} is invalid: {'.'.join(map(str, first['loc']))}: {message}") from None


def verify_files(directory: Path, meta: ArtifactMeta) -> None:
    """Every required file is present, non-empty and, where a digest was recorded, unchanged."""
    missing = [f for f in meta.files if not (directory / f).is_file()]
    if missing:
        raise ArtifactError(f"{directory} is incomplete: missing {', '.join(missing)}")
    empty = [f for f in meta.files if (directory / f).stat().st_size == 0]
    if empty:
        raise ArtifactError(f"{directory} is corrupt: empty file {', '.join(empty)}")
    for name, expected in meta.digests.items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{directory} is incomplete: missing {name}")
        size = path.stat().st_size
        if size != expected.size:  # cheap, and catches the common damage (a truncated copy) first
            raise ArtifactError(f"{path} is corrupt: {size} bytes, {expected.size} were written (truncated?)")
        if file_digest(path).sha256 != expected.sha256:
            raise ArtifactError(f"{path} is corrupt: its sha256 differs from the one recorded at save")


def read_meta(directory: str | Path) -> ArtifactMeta:
    """Read and validate ``sentitune.json`` and the files it names; raise ArtifactError naming what is wrong."""
    directory = Path(directory)
    if not directory.exists():
        raise ArtifactError(f"model directory not found: {directory}")
    if not directory.is_dir():
        raise ArtifactError(f"model path is not a directory: {directory}")
    path = directory / META_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a sentitune model: {META_FILE} is missing")
    meta = _parse(path)
    if meta.format_version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format_version {meta.format_version}; this sentitune reads up to {FORMAT_VERSION}"
        )
    verify_files(directory, meta)
    return meta


def update_meta(directory: str | Path, **changes: Any) -> ArtifactMeta:
    meta = read_meta(directory)
    meta = ArtifactMeta.model_validate(meta.model_dump() | changes)  # validated: no temperature 0 written
    write_meta(directory, meta)
    return meta


def record_metrics(directory: str | Path, **metrics: Any) -> ArtifactMeta:
    """Add (or replace) entries of ``meta.metrics`` (e.g. ``test=...``); the card is regenerated with them."""
    meta = read_meta(directory)
    meta.metrics = meta.metrics | metrics
    write_meta(directory, meta)
    return meta


TRANSFORMERS_CONFIG = "config.json"


def _binary_labels(config: dict) -> bool:
    """Label 0 negative, 1 positive: by name, or transformers' unnamed LABEL_0 / LABEL_1."""
    names = [str(v).upper() for _, v in sorted((int(k), v) for k, v in (config.get("id2label") or {}).items())]
    names = names or ["LABEL_0", "LABEL_1"]
    named = len(names) == 2 and names[0].startswith("NEG") and names[1].startswith("POS")
    return named or names == ["LABEL_0", "LABEL_1"]


def transformers_meta(directory: Path) -> ArtifactMeta | None:
    """Metadata for a plain transformers sequence-classification directory (config.json, no
    sentitune.json), read as a `classifier`; None when ``directory`` is not one of those."""
    path = Path(directory) / TRANSFORMERS_CONFIG
    if (Path(directory) / META_FILE).exists() or not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is corrupt: not valid JSON ({exc})") from None
    architectures = config.get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        raise ArtifactError(f"{directory} is not a sentitune model ({META_FILE} is missing) nor a transformers "
                            f"sequence classifier (architectures: {', '.join(map(str, architectures)) or 'none'})")
    if not _binary_labels(config):
        raise ArtifactError(f"{directory} has labels {config.get('id2label')}; sentitune reads two-label "
                            "classifiers with label 0 NEGATIVE and 1 POSITIVE")
    try:  # the keys `sentitune export hf` writes; a foreign model has none of them
        return ArtifactMeta(
            method="classifier", base_model=config.get("sentitune_base_model"),
            max_length=config.get("sentitune_max_length") or min(config.get("max_position_embeddings") or 512, 512),
            temperature=config.get("sentitune_temperature", 1.0), options={"format": "transformers"},
            long_text=config.get("sentitune_long_text"),
        )
    except ValidationError as exc:
        raise ArtifactError(f"{path} is invalid: {exc.errors()[0]['msg']}") from None
