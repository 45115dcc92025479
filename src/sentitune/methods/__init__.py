"""Method registry: name -> class, imported lazily so ``import sentitune`` stays light."""

from __future__ import annotations

import importlib

from sentitune.errors import SentituneError

# method name -> "module:Class". Every method writes `method` into sentitune.json, and `load`
# dispatches on it here; nothing else needs to know which method made an artifact.
METHODS: dict[str, str] = {
    "classifier": "sentitune.methods.classifier:SequenceClassifier",
    "tfidf": "sentitune.methods.tfidf:TfidfModel",
    "lexicon": "sentitune.methods.lexicon:LexiconModel",
    "head": "sentitune.methods.head:EmbeddingHead",
    "instruct": "sentitune.methods.instruct:InstructModel",
    "zero-shot": "sentitune.methods.instruct:ZeroShotModel",
    "onnx": "sentitune.methods.onnx:OnnxClassifier",
    "router": "sentitune.methods.router:RouterModel",
    "ensemble": "sentitune.methods.ensemble:EnsembleModel",
    "distill": "sentitune.methods.distill:DistilledClassifier",
    "static": "sentitune.methods.static:StaticHead",
}
# methods whose artifact is a transformers *ForSequenceClassification (full or LoRA), loaded by
# SequenceClassifier: what exports to ONNX and Hugging Face format and reads long texts in windows
SEQUENCE_CLASSIFIERS = ("classifier", "distill")


def get_method(name: str):
    try:
        target = METHODS[name]
    except KeyError:
        raise SentituneError(f"unknown method {name!r}; choose from {', '.join(sorted(METHODS))}") from None
    module, cls = target.split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise SentituneError(f"method {name!r} is not available in this install: {exc}") from None
