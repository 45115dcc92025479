"""Export a `classifier` artifact as a plain transformers directory.

The result loads with ``transformers.pipeline("text-classification", model=DIR)`` (offline, no
sentitune, no peft): a LoRA adapter is merged into its base weights, labels are named
(``id2label`` {0: NEGATIVE, 1: POSITIVE}), and the tokenizer is saved beside the model with
``model_max_length`` set to the artifact's ``max_length``, so ``truncation=True`` reads exactly what
sentitune reads. What only sentitune uses rides along as extra config.json keys
(``sentitune_temperature``, ``sentitune_max_length``, ``sentitune_base_model``, ``sentitune_long_text``),
and the model card (README.md) is rendered from the source's metadata. ``sentitune.load(DIR)`` reads it back.

A long-text strategy other than ``head`` (head+tail, chunks) is sentitune's own: the pipeline reads
only the first ``max_length`` tokens of a long text, so the export warns and its card says so;
short texts score the same either way.

A router (the shipped default) is several models and a transformers directory holds one: its
transformer route (English, for the default) is exported, with a warning that says so.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import sentitune
from sentitune.artifact import LABELS
from sentitune.card import write_card
from sentitune.errors import SentituneError
from sentitune.methods import SEQUENCE_CLASSIFIERS
from sentitune.methods.hf import describe_long_text, quiet_transformers, reads_head


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _route_to_export(router, model_path):
    route = router.transformer_route()
    if route is None or router.models[route].meta.method not in SEQUENCE_CLASSIFIERS:
        raise SentituneError(f"router {model_path or 'default'} has no transformer classifier route to export "
                             f"(routes: {', '.join(f'{n}={m.meta.method}' for n, m in router.models.items())})")
    others = [n for n in router.models if n != route]
    warnings.warn(f"the model is a router and a transformers directory holds one model: only its {route!r} route "
                  f"({router.models[route].meta.base_model}) is exported, so the export reads the texts of its "
                  f"other routes ({', '.join(others)}) with that model too", stacklevel=3)
    return router.models[route]


def export_hf(model_path: str | Path | None, out: str | Path) -> Path:
    """Write ``model_path`` (None: the shipped model) into ``out`` as a transformers directory.

    Files are written into a temporary directory inside ``out`` and renamed into place, config.json
    last: a killed export never leaves a config that vouches for a half-written weight file.
    """
    source = sentitune.load(model_path, precision="fp32")  # LoRA is merged on load
    if source.meta.method == "router":
        source = _route_to_export(source, model_path)
    if source.meta.method not in SEQUENCE_CLASSIFIERS:
        raise SentituneError(f"only transformer classifiers (methods `classifier`, `distill`) can be exported to Hugging Face "
                             f"format; this model is {source.meta.method!r}")
    meta = source.meta
    model, tokenizer = source.model.float().eval(), source.tokenizer
    model.config.id2label = dict(enumerate(LABELS))
    model.config.label2id = {label: i for i, label in enumerate(LABELS)}
    model.config.sentitune_temperature = meta.temperature
    model.config.sentitune_max_length = meta.max_length
    model.config.sentitune_base_model = meta.base_model
    if not reads_head(meta.long_text):
        model.config.sentitune_long_text = meta.long_text.model_dump()
        warnings.warn(f"the model reads long texts by {describe_long_text(meta.long_text)}; a transformers pipeline "
                      f"reads only their first {meta.max_length} tokens (sentitune.load on the export still applies it)",
                      stacklevel=2)
    tokenizer.model_max_length = meta.max_length
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    readable = 0o666 & ~_umask()  # the weights are written private (0600); the directory is for sharing
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as tmp, quiet_transformers():
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        write_card(tmp, meta, transformers_format=True)
        names = sorted(p.name for p in Path(tmp).iterdir() if p.name != "config.json") + ["config.json"]
        for name in names:
            os.chmod(Path(tmp) / name, readable)
            os.replace(Path(tmp) / name, out / name)
    return out
