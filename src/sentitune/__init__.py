"""sentitune: pretrained language models as fast, calibrated POSITIVE/NEGATIVE classifiers.

    import sentitune
    model = sentitune.load()                      # the shipped default: Chinese -> Chinese model, else English
    model.predict(["I love it", "Never again"])   # ['POSITIVE', 'NEGATIVE']
    model.predict_proba(["I love it"])            # [[0.02, 0.98]]  (NEGATIVE, POSITIVE)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sentitune._version import __version__
from sentitune.presets import PRESETS

# The shipped English model: a LoRA adapter + classification head on the pip-installed all-MiniLM-L6-v2.
ENGLISH_MODEL_PATH = Path(__file__).parent / "default_model"
# The shipped Chinese model (methods/router sends Han-script texts to it): an ensemble of character
# n-grams (models/chinese) and a head on multilingual-e5-small (models/chinese_e5).
CHINESE_MODEL_PATH = Path(__file__).parent / "models" / "chinese_mix"
# The shipped default: a router sending Chinese texts to CHINESE_MODEL_PATH and every other text to
# ENGLISH_MODEL_PATH (with a warning naming the language when it is neither).
DEFAULT_MODEL_PATH = PRESETS["default"]


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
    """Load a preset ("default", "fast", "accurate": sentitune.presets) or any sentitune artifact directory (default: the shipped router, ``DEFAULT_MODEL_PATH``:
    Chinese texts to ``CHINESE_MODEL_PATH``, the rest to ``ENGLISH_MODEL_PATH``) as a predictor.

    Also read: a plain transformers directory (config.json of a two-label *ForSequenceClassification,
    no sentitune.json, e.g. from `sentitune export hf`), and a Hugging Face Hub id of either kind
    (from the local cache offline).

    ``precision`` ("fp32", "bf16", "auto"; default ``SENTITUNE_PRECISION``, which defaults to auto)
    and ``device`` ("cpu", "cuda", "auto") are understood by every method (those without torch
    weights accept and ignore them). ``auto`` takes bf16 where the CPU computes it natively and bf16
    gave fp32's label on >= 99.5% of held-out texts (measured once per artifact and CPU kind), else
    fp32; ``model.inference_path`` says which and why. ``options`` are method-specific
    (``merge=False`` keeps a LoRA adapter separate).
    """
    from sentitune.artifact import read_meta, transformers_meta
    from sentitune.config import runtime_settings
    from sentitune.methods import get_method
    from sentitune.methods.hardware import load_fastest, weights_precision
    from sentitune.presets import preset_path

    directory = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if not directory.exists():  # a preset name ("fast", "accurate", "default"); a real directory wins
        directory = preset_path(str(path)) or directory
    if not directory.exists() and HUB_ID.fullmatch(str(path)):
        directory = _hub_snapshot(str(path))
    meta = transformers_meta(directory) or read_meta(directory)
    # reading the settings validates all of them; threads apply before a method builds its torch/onnxruntime state
    settings = runtime_settings()
    if settings.threads:
        from sentitune.methods.engine import configure_threads

        configure_threads()
    method = get_method(meta.method)

    def load_at(chosen: str | None):
        return method.from_artifact(directory, meta, precision=chosen, device=device, **options)

    if (precision or settings.precision) == "auto":
        model, why = load_fastest(load_at, directory, settings.cache_dir)
    else:
        model = load_at(precision)
        asked = f"precision={precision!r}" if precision else f"SENTITUNE_PRECISION={settings.precision}"
        why = f"{weights_precision(model)} ({asked})"
    model.inference_path = why
    return model


__all__ = ["CHINESE_MODEL_PATH", "DEFAULT_MODEL_PATH", "ENGLISH_MODEL_PATH", "load", "__version__"]
