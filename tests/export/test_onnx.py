"""ONNX export of the shipped English model: exact fp32, near-identical int8, clear errors; the
shipped default (a router) exports to a router of ONNX and copied sub-models."""

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

import sentitune
from sentitune.errors import ArtifactError, SentituneError
from sentitune.export.onnx import export_onnx

ENGLISH = sentitune.ENGLISH_MODEL_PATH


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    return {q: export_onnx(ENGLISH, root / str(q), quantize=q) for q in (None, "int8")}


def test_fp32_matches_pytorch_and_int8_agrees(exported, sample_test):
    texts = [r["text"] for r in sample_test]
    reference = sentitune.load(ENGLISH).logits(texts)
    fp32 = sentitune.load(exported[None])
    assert fp32.meta.method == "onnx" and fp32.temperature == sentitune.load(ENGLISH).temperature
    np.testing.assert_allclose(fp32.logits(texts), reference, atol=1e-3)
    int8 = sentitune.load(exported["int8"]).logits(texts)
    # Measured 0.989 on this 352-text split (4 labels) and 0.993 on the default model's 7,155-row
    # held-out split (benchmarks/speed.py); issue 6 asks 0.99 there.
    assert (int8.argmax(1) == reference.argmax(1)).mean() >= 0.98


def test_int8_uses_signed_weights_and_keeps_the_first_feed_forwards_fp32(exported):
    graph = onnx.load(str(exported["int8"] / "model.onnx")).graph
    float_matmuls = {n.name for n in graph.node if n.op_type == "MatMul"}
    # the first three blocks' feed-forward layers, where per-tensor int8 activations lose the most
    for layer in range(3):
        assert f"/bert/encoder/layer.{layer}/intermediate/dense/MatMul" in float_matmuls
        assert f"/bert/encoder/layer.{layer}/output/dense/MatMul" in float_matmuls
    assert "/bert/encoder/layer.3/intermediate/dense/MatMul" not in float_matmuls
    # s8 weights: u8 x s8 runs on the VNNI/AMX integer kernels (u8 x u8 was no faster than fp32)
    zero_points = {i.name: i for i in graph.initializer if i.name.endswith("_zero_point")}
    weights = [zero_points[n.input[3]] for n in graph.node if n.op_type == "MatMulInteger"]
    assert len(weights) == 6 * 6 + 2 - 6 and all(w.data_type == onnx.TensorProto.INT8 for w in weights)


def test_onnx_threads_follow_the_one_setting(exported):
    code = f"import sentitune; print(sentitune.load({str(exported['int8'])!r}).session.get_session_options().intra_op_num_threads)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "SENTITUNE_THREADS": "1"})
    assert proc.stdout.strip() == "1", proc.stderr


def test_truncated_onnx_file_is_a_clear_error(exported, tmp_path):
    import shutil

    broken = shutil.copytree(exported[None], tmp_path / "broken")
    data = (broken / "model.onnx").read_bytes()
    (broken / "model.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ArtifactError, match="model.onnx"):
        sentitune.load(broken)


def test_export_writes_a_checked_artifact_in_place(exported):
    """Every file the export wrote is listed with its digest; the temporary directory is gone; the
    artifact honours the load contract (precision, device) like every method."""
    meta = sentitune.artifact.read_meta(exported[None])
    assert {"model.onnx", "tokenizer.json"} <= set(meta.files) == set(meta.digests)
    assert [p.name for p in exported[None].iterdir() if p.name.startswith(".")] == []  # no temporary left
    model = sentitune.load(exported[None], precision="bf16", device="cpu")
    assert model.predict(["What a wonderful, heartfelt film."]) == ["POSITIVE"]


def test_onnx_artifact_without_its_tokenizer_is_one_line(exported, tmp_path):
    import json
    import shutil

    broken = shutil.copytree(exported[None], tmp_path / "notok")
    (broken / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="incomplete: missing tokenizer.json"):
        sentitune.load(broken)  # listed in files: read_meta names it
    raw = json.loads((broken / "sentitune.json").read_text())
    raw["files"], raw["digests"] = ["model.onnx"], {}  # as an export before tokenizers were listed
    (broken / "sentitune.json").write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="incomplete: missing tokenizer.json"):
        sentitune.load(broken)


def test_only_classifiers_export(tfidf_model_dir, tmp_path):
    with pytest.raises(SentituneError, match="tfidf"):
        export_onnx(tfidf_model_dir, tmp_path / "x")


def test_cli_export_of_the_default_router_then_predict(tmp_path):
    """The default is a router: its English route becomes ONNX, its Chinese ensemble is copied with its members."""
    out = tmp_path / "cli-onnx"
    run = lambda *a: subprocess.run([sys.executable, "-m", "sentitune", *map(str, a)], capture_output=True, text=True)  # noqa: E731
    assert run("export", "onnx", "--out", out, "--quantize", "int8").returncode == 0
    router = sentitune.load(out)
    assert router.meta.method == "router"
    assert {n: m.meta.method for n, m in router.models.items()} == {"zh": "ensemble", "en": "onnx"}
    assert {p.name for p in (out / "zh").iterdir() if p.is_dir()} == {"ngrams", "e5"}
    assert router.meta.options["routes"] == {"zh": "zh", "en": "en"}  # self-contained: moves as one directory
    texts = ["这部电影太好看了", "服务太差了，再也不来"]
    np.testing.assert_allclose(router.predict_proba(texts), sentitune.load().predict_proba(texts), atol=1e-12)
    proc = run("predict", "--model-path", out, "What a wonderful, heartfelt film.", "这部电影太好看了")
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    assert [line.split()[0] for line in proc.stdout.strip().splitlines()] == ["POSITIVE", "POSITIVE"]


def test_decoder_classifier_exports_exactly(tmp_path, sample_train):
    """A Qwen3 sequence classifier (tiny-qwen3): the exported graph finds the last real token as
    PyTorch does, in a padded batch and for a one-token text alone."""
    from sentitune.config import TrainConfig
    from sentitune.methods.classifier import SequenceClassifier

    cfg = TrainConfig(method="classifier", model="tiny-qwen3", output_dir=str(tmp_path / "run"), max_steps=2,
                      batch_size=4, max_length=32, learning_rate=1e-3, eval_strategy="no")
    rows = sorted(sample_train, key=lambda r: len(r["text"]))
    SequenceClassifier().fit([r for r in rows if r["label"] == 0][:4] + [r for r in rows if r["label"] == 1][:4], None, cfg).save(tmp_path / "m")
    texts = ["ok", "a delightful surprise from start to finish", "The battery died after two days."]
    reference = sentitune.load(tmp_path / "m").logits(texts)
    exported = sentitune.load(export_onnx(tmp_path / "m", tmp_path / "onnx"))
    np.testing.assert_allclose(exported.logits(texts), reference, atol=1e-4)
    np.testing.assert_allclose(exported.logits(texts[:1]), reference[:1], atol=1e-4)
