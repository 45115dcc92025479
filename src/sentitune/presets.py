"""Named presets: a word a user can pass instead of a model directory.

    default   the shipped router (Chinese -> character n-grams averaged with a multilingual-e5 head,
              everything else -> LoRA MiniLM)
    fast      a router: Chinese -> the character n-grams of the default's Chinese route alone (no
              multilingual-e5: it costs ~40 ms a text), everything else -> static model2vec
              embeddings + an MLP head (``FAST_ENGLISH``, scripts/train_fast_model.py); tens of
              thousands of texts/s on a CPU
    accurate  a router like the default's: Chinese -> the default's Chinese route, everything else ->
              a LoRA adapter on all-mpnet-base-v2 (``ACCURATE_ENGLISH``, scripts/train_accurate_model.py);
              its 438 MB base is installed apart: `sentitune models prepare all-mpnet-base-v2`

``preset_path(name)`` gives the artifact directory of a preset, or None when ``name`` is not one
(so callers go on to read it as a path).
"""

from __future__ import annotations

from pathlib import Path

from sentitune.errors import SentituneError

PACKAGE = Path(__file__).parent
# the accurate preset's English route: the teacher that distillation starts from (English only)
ACCURATE_ENGLISH = PACKAGE / "models" / "accurate"
FAST_ENGLISH = PACKAGE / "models" / "fast"  # the fast preset's English route, the static model
PRESETS: dict[str, Path] = {
    "default": PACKAGE / "models" / "router",
    "fast": PACKAGE / "models" / "fast_router",
    "accurate": PACKAGE / "models" / "accurate_router",
}
# Why a preset's directory can be missing, and what to do about it: one line each.
MISSING = {
    "default": "the default model is missing from this install (src/sentitune/models/router); reinstall sentitune",
    "fast": "the fast model is missing from this install; rebuild it with scripts/train_fast_model.py",
    "accurate": "the accurate model is missing from this install; rebuild it with scripts/train_accurate_model.py",
}


def preset_path(name: str | Path) -> Path | None:
    """The artifact directory of preset ``name``; None if ``name`` names no preset.

    Raises SentituneError (one line) for a preset whose artifact is not in this install."""
    key = str(name)
    if key not in PRESETS:
        return None
    path = PRESETS[key]
    if not (path / "sentitune.json").is_file():
        raise SentituneError(f"preset {key!r}: {MISSING[key]}")
    return path
