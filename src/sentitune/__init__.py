"""sentitune: pretrained language models as fast, calibrated POSITIVE/NEGATIVE classifiers.

    import sentitune
    model = sentitune.load()                      # the shipped default model
    model.predict(["I love it", "Never again"])   # ['POSITIVE', 'NEGATIVE']
    model.predict_proba(["I love it"])            # [[0.02, 0.98]]  (NEGATIVE, POSITIVE)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

# The shipped default: a LoRA adapter + classification head on the pip-installed all-MiniLM-L6-v2.
DEFAULT_MODEL_PATH = Path(__file__).parent / "default_model"


def load(path: str | Path | None = None, **kwargs: Any):
    """Load any sentitune artifact directory (default: the shipped model) as a predictor."""
    from sentitune.artifact import read_meta
    from sentitune.methods import get_method

    directory = Path(path) if path is not None else DEFAULT_MODEL_PATH
    meta = read_meta(directory)
    if os.environ.get("SENTITUNE_THREADS"):  # applied before any method builds its torch/onnxruntime state
        from sentitune.methods.engine import configure_threads

        configure_threads()
    return get_method(meta.method).from_artifact(directory, meta, **kwargs)


__all__ = ["DEFAULT_MODEL_PATH", "load", "__version__"]
