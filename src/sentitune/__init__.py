"""sentitune: pretrained language models as fast, calibrated POSITIVE/NEGATIVE classifiers.

    import sentitune
    model = sentitune.load()                      # the shipped default model
    model.predict(["I love it", "Never again"])   # ['POSITIVE', 'NEGATIVE']
    model.predict_proba(["I love it"])            # [[0.02, 0.98]]  (NEGATIVE, POSITIVE)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sentitune._version import __version__

# The shipped default: a LoRA adapter + classification head on the pip-installed all-MiniLM-L6-v2.
DEFAULT_MODEL_PATH = Path(__file__).parent / "default_model"


# owner/name, as the Hugging Face Hub spells a repository; a path that exists is always read as a path
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# weights for other frameworks that a plain transformers repository may also hold
OTHER_FRAMEWORKS = ["*.h5", "*.msgpack", "*.ot", "*.tflite", "*.onnx", "onnx/*", "openvino/*", "coreml/*", "*.gguf"]


def _hub_snapshot(repo_id: str) -> Path:
    """The local snapshot of a Hub repository: all of a sentitune artifact, the PyTorch side of others."""
    from huggingface_hub import hf_hub_download, is_offline_mode, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    from sentitune.artifact import META_FILE
    from sentitune.errors import ArtifactError

    try:
        try:
            hf_hub_download(repo_id, META_FILE)
            return Path(snapshot_download(repo_id))
        except EntryNotFoundError:  # a plain transformers model (or, offline, an uncached file)
            return Path(snapshot_download(repo_id, ignore_patterns=OTHER_FRAMEWORKS))
    except (OSError, ValueError, HfHubHTTPError, EntryNotFoundError) as exc:
        reason = "offline and not in the local cache" if is_offline_mode() else str(exc).splitlines()[0][:200]
        raise ArtifactError(f"model directory not found: {repo_id}; as a Hugging Face Hub id: {reason}") from None


def load(path: str | Path | None = None, *, precision: str | None = None, device: str | None = None, **options: Any):
    """Load any sentitune artifact directory (default: the shipped model) as a predictor.

    Also read: a plain transformers directory (config.json of a two-label *ForSequenceClassification,
    no sentitune.json, e.g. from `sentitune export hf`), and a Hugging Face Hub id of either kind
    (from the local cache offline).

    ``precision`` ("fp32", "bf16") and ``device`` ("cpu", "cuda", "auto") are understood by every
    method (those without torch weights accept and ignore them); ``options`` are method-specific
    (``merge=False`` keeps a LoRA adapter separate).
    """
    from sentitune.artifact import read_meta, transformers_meta
    from sentitune.config import runtime_settings
    from sentitune.methods import get_method

    directory = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if not directory.exists() and HUB_ID.fullmatch(str(path)):
        directory = _hub_snapshot(str(path))
    meta = transformers_meta(directory) or read_meta(directory)
    # reading the settings validates all of them; threads apply before a method builds its torch/onnxruntime state
    if runtime_settings().threads:
        from sentitune.methods.engine import configure_threads

        configure_threads()
    return get_method(meta.method).from_artifact(directory, meta, precision=precision, device=device, **options)


__all__ = ["DEFAULT_MODEL_PATH", "load", "__version__"]
