"""`onnx`: a `classifier` exported to ONNX (``sentitune export onnx``), run with onnxruntime.

The artifact holds ``model.onnx`` and the tokenizer; `sentitune.load`, `predict`, `evaluate` use it
like any other method. The exporter lives in ``sentitune.export.onnx``; this module only runs graphs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sentitune.artifact import ArtifactMeta
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.base import Capabilities, SentimentModel
from sentitune.methods.engine import configure_threads, length_batches, require_tokenizer
from sentitune.methods.hf import mean_over_windows, reads_head, text_windows

ONNX_FILE = "model.onnx"
# what the Rust tokenizer's enable_truncation(max_length) sets
HEAD_TRUNCATION = {"stride": 0, "strategy": "longest_first", "direction": "right"}


class OnnxClassifier(SentimentModel):
    method = "onnx"
    capabilities = Capabilities(batch_size=True, tokenizer=True)

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
        # Settings checked per call: the wrapper changes them on its own calls, and the server may
        # lower meta.max_length after loading. Changed only when they differ, as the wrapper does: a
        # change while another model thread is encoding would fail ("Already borrowed").
        # A text over max_length is read as meta.long_text says, exactly as the PyTorch classifier
        # reads it (hf.text_windows); with the default (head) it is truncated.
        rust = self.tokenizer.backend_tokenizer
        if rust.padding is not None:
            rust.no_padding()
        if reads_head(self.meta.long_text):
            if rust.truncation != {**HEAD_TRUNCATION, "max_length": self.meta.max_length}:
                rust.enable_truncation(self.meta.max_length)
            return self._run([e.ids for e in rust.encode_batch(texts)])
        if rust.truncation is not None:
            rust.no_truncation()
        encodings = rust.encode_batch(texts)
        if all(len(e.ids) <= self.meta.max_length for e in encodings):
            return self._run([e.ids for e in encodings])
        ids, owner = text_windows([(e.ids, e.special_tokens_mask) for e in encodings], self.meta.max_length,
                                  self.meta.long_text)
        return mean_over_windows(self._run(ids), owner, len(texts))

    def _run(self, ids: list[list[int]]) -> np.ndarray:
        """Logits of token sequences, in length-bucketed padded batches, in their order."""
        out = np.empty((len(ids), 2), dtype=np.float32)
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
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None) -> "OnnxClassifier":
        """The graph runs at the precision it was exported with, on the CPU: ``precision`` and
        ``device`` do not apply."""
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
        require_tokenizer(directory)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory))
        except Exception as exc:  # the Rust tokenizer raises a bare Exception on bad JSON
            raise ArtifactError(f"cannot load the tokenizer in {directory}: {str(exc).splitlines()[0][:200]}") from None
        return cls(meta, session, tokenizer)
