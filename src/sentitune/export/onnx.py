"""ONNX export (optionally int8) and the onnxruntime predictor.

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
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentitune.artifact import ArtifactMeta, write_meta
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.base import SentimentModel
from sentitune.methods.engine import configure_threads, length_batches

ONNX_FILE = "model.onnx"
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


def export_onnx(model_path: str | Path | None, out: str | Path, quantize: str | None = None) -> Path:
    import onnx

    import sentitune

    source = sentitune.load(model_path)
    if source.meta.method != "classifier":
        raise SentituneError(f"only `classifier` models export to ONNX; this one is {source.meta.method!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = source.model.float().eval(), source.tokenizer
    sample = tokenizer(["an example sentence", "another one"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / ONNX_FILE
        try:
            # the tracer warns about every Python branch on a shape; the graphs are checked against
            # PyTorch on padded batches and one-token texts (tests/export), so the warnings only alarm
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model, tuple(sample[n] for n in names), str(fp32), input_names=names, output_names=["logits"],
                    dynamic_axes=axes, opset_version=17, dynamo=False,
                )
        except Exception as exc:  # the TorchScript exporter fails on graphs it cannot trace (some decoders)
            raise SentituneError(
                f"{type(model).__name__} does not export to ONNX: {str(exc).splitlines()[0][:200]}"
            ) from None
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            keep = fp32_matmuls(model, [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "MatMul"])
            # onnxruntime logs "consider pre-processing" on the root logger for every graph; the
            # agreement and speed in benchmarks/RESULTS.md are measured on this graph as it is.
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)
            try:
                quantize_dynamic(
                    str(fp32), str(out / ONNX_FILE), per_channel=True, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"], nodes_to_exclude=keep,
                )
            finally:
                root.setLevel(level)
        else:
            shutil.copy(fp32, out / ONNX_FILE)
    tokenizer.save_pretrained(out)
    meta = source.meta.model_copy(deep=True)
    meta.method, meta.backend = "onnx", "onnxruntime"
    meta.options = {"source_method": "classifier", "quantize": quantize, "inputs": names}
    meta.files = [ONNX_FILE, "tokenizer.json"]
    write_meta(out, meta)
    return out


class OnnxClassifier(SentimentModel):
    method = "onnx"

    # onnxruntime ran fastest on batches of ~256 padded tokens (16 tweets, 2 long reviews): larger
    # batches spill the activations out of the core's cache; measured fp32 and int8.
    def __init__(self, meta: ArtifactMeta, session, tokenizer, batch_size: int = 64, max_tokens: int = 256):
        super().__init__(meta)
        self.session, self.tokenizer = session, tokenizer
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.inputs = [i.name for i in session.get_inputs()]
        self.pad_id = tokenizer.pad_token_id or 0

    def logits(self, texts: list[str]) -> np.ndarray:
        # The Rust tokenizer's batch API directly: a quarter less time than transformers' wrapper.
        # Settings per call: the wrapper changes them on its own calls, and the server may lower
        # meta.max_length after loading.
        rust = self.tokenizer.backend_tokenizer
        rust.no_padding()
        rust.enable_truncation(self.meta.max_length)
        ids = [e.ids for e in rust.encode_batch(texts)]
        out = np.empty((len(texts), 2), dtype=np.float32)
        for idx in length_batches([len(x) for x in ids], self.batch_size, self.max_tokens):
            longest = max(len(ids[i]) for i in idx)
            input_ids = np.full((len(idx), longest), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), longest), dtype=np.int64)
            for row, i in enumerate(idx):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}
            out[idx] = self.session.run(["logits"], {n: feed[n] for n in self.inputs})[0]
        return out

    def save_weights(self, directory: Path) -> list[str]:
        raise SentituneError("an ONNX artifact is already saved; copy its directory")

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, **kwargs: Any) -> "OnnxClassifier":
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = configure_threads()
        options.inter_op_num_threads = 1  # one graph runs at a time: parallelism is inside the ops
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(directory / ONNX_FILE), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ArtifactError(f"{directory / ONNX_FILE} is corrupt or truncated: {str(exc).splitlines()[0][:200]}") from None
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory))
        except Exception as exc:  # the Rust tokenizer raises a bare Exception on bad JSON
            raise ArtifactError(f"cannot load the tokenizer in {directory}: {str(exc).splitlines()[0][:200]}") from None
        return cls(meta, session, tokenizer, **kwargs)
