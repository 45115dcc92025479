import hashlib
import json
import math
import shutil

import numpy as np
import pytest

import sentitune
from sentitune.errors import ArtifactError


def test_tfidf_artifact_round_trip(tfidf_model_dir, sample_test):
    model = sentitune.load(tfidf_model_dir)
    texts = [r["text"] for r in sample_test[:50]]
    proba = model.predict_proba(texts)
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1)
    meta = json.loads((tfidf_model_dir / "sentitune.json").read_text())
    weights = tfidf_model_dir / "tfidf.joblib"
    assert meta["method"] == "tfidf" and meta["files"] == ["tfidf.joblib"]
    assert meta["digests"]["tfidf.joblib"] == {"size": weights.stat().st_size,
                                               "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    assert "labels" not in meta and "backend" not in meta  # dead fields are no longer written
    assert model.predict(["I absolutely love this product, it is wonderful"]) == ["POSITIVE"]


def test_temperature_changes_confidence_not_labels(tfidf_model_dir, tmp_path):
    shutil.copytree(tfidf_model_dir, tmp_path / "m")
    texts = ["great fun", "terrible waste of money", "not bad at all"]
    before = sentitune.load(tmp_path / "m").predict_proba(texts)
    sentitune.artifact.update_meta(tmp_path / "m", temperature=3.0)
    after = sentitune.load(tmp_path / "m").predict_proba(texts)
    assert (before.argmax(1) == after.argmax(1)).all()
    assert (np.abs(after[:, 1] - 0.5) < np.abs(before[:, 1] - 0.5)).all()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: shutil.rmtree(d), "model directory not found"),
        (lambda d: (d / "sentitune.json").unlink(), "sentitune.json is missing"),
        (lambda d: (d / "sentitune.json").write_text("{not json"), "corrupt: not valid JSON"),
        (lambda d: (d / "tfidf.joblib").unlink(), "incomplete: missing tfidf.joblib"),
        (lambda d: (d / "tfidf.joblib").write_bytes(b"\x80\x04garbage"), "tfidf.joblib is corrupt"),
    ],
)
def test_damaged_artifacts_give_clear_errors(tfidf_model_dir, tmp_path, damage, message):
    target = tmp_path / "m"
    shutil.copytree(tfidf_model_dir, target)
    damage(target)
    with pytest.raises(ArtifactError, match=message):
        sentitune.load(target)


def test_empty_and_non_string_texts_are_rejected(tfidf_model_dir):
    model = sentitune.load(tfidf_model_dir)
    with pytest.raises(sentitune.errors.SentituneError, match="text 1 is empty"):
        model.predict(["fine", "   "])
    with pytest.raises(sentitune.errors.SentituneError, match="text 0 is int"):
        model.predict([3])


def copy_with_meta(source, target, **changes):
    """A copy of the artifact ``source`` whose sentitune.json has ``changes`` applied (None deletes a key)."""
    shutil.copytree(source, target)
    raw = json.loads((target / "sentitune.json").read_text())
    raw.update(changes)
    raw = {k: v for k, v in raw.items() if v is not None}
    (target / "sentitune.json").write_text(json.dumps(raw))  # json writes float("nan") as NaN, as a tool might
    return target


def test_old_artifacts_with_dead_fields_and_unknown_keys_still_load(tfidf_model_dir, tmp_path):
    old = copy_with_meta(tfidf_model_dir, tmp_path / "old", labels=["NEGATIVE", "POSITIVE"], backend="sklearn",
                         written_by_a_future_version={"x": 1}, digests=None)
    assert sentitune.load(old).predict(["I absolutely love this product, it is wonderful"]) == ["POSITIVE"]


@pytest.mark.parametrize("temperature", [0, -1.5, math.nan, math.inf])
def test_temperature_that_is_not_positive_and_finite_is_rejected_at_read(tfidf_model_dir, tmp_path, temperature):
    target = copy_with_meta(tfidf_model_dir, tmp_path / "m", temperature=temperature)
    with pytest.raises(ArtifactError, match=r"sentitune.json is invalid: temperature: must be a positive finite number"):
        sentitune.load(target)


def test_update_meta_refuses_a_zero_temperature(tfidf_model_dir, tmp_path):
    shutil.copytree(tfidf_model_dir, tmp_path / "m")
    with pytest.raises(ValueError, match="temperature"):
        sentitune.artifact.update_meta(tmp_path / "m", temperature=0.0)
    assert sentitune.load(tmp_path / "m").temperature > 0  # the file on disk was not touched


@pytest.mark.parametrize("name", ["/etc/hostname", "../tfidf0/tfidf.joblib", "sub/../../x", "..\\x"])
def test_files_that_leave_the_directory_are_rejected(tfidf_model_dir, tmp_path, name):
    target = copy_with_meta(tfidf_model_dir, tmp_path / "m", files=["tfidf.joblib", name])
    with pytest.raises(ArtifactError, match="is invalid: files: file .* is outside the model directory"):
        sentitune.load(target)


def test_a_bit_flipped_weight_file_is_named_at_load(tfidf_model_dir, tmp_path):
    shutil.copytree(tfidf_model_dir, tmp_path / "m")
    weights = tmp_path / "m" / "tfidf.joblib"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the checksum can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"tfidf.joblib is corrupt: its sha256 differs"):
        sentitune.load(tmp_path / "m")


def test_the_shipped_default_model_records_and_passes_its_checksums():
    meta = sentitune.artifact.read_meta(sentitune.ENGLISH_MODEL_PATH)
    assert set(meta.digests) == set(meta.files) >= {"adapter_model.safetensors", "tokenizer.json"}
    digest = sentitune.artifact.file_digest(sentitune.ENGLISH_MODEL_PATH / "adapter_model.safetensors")
    assert meta.digests["adapter_model.safetensors"] == digest


def damage_weights(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "bad header":
        data[:8] = b"\xff" * 8  # safetensors' header length: absurd
    else:  # bit flip in the tensor data
        data[-1000] ^= 0x10
    path.write_bytes(bytes(data))


SHIPPED_WEIGHTS = (sentitune.ENGLISH_MODEL_PATH / "adapter_model.safetensors").stat().st_size


@pytest.mark.parametrize("how, message", [
    ("truncated", f"adapter_model.safetensors is corrupt: {SHIPPED_WEIGHTS // 2} bytes, {SHIPPED_WEIGHTS} were written"),
    ("bad header", "adapter_model.safetensors is corrupt: its sha256 differs"),
    ("bit flip", "adapter_model.safetensors is corrupt: its sha256 differs"),
])
def test_predict_with_damaged_default_weights_is_one_line_exit_2(cli, tmp_path, how, message):
    from conftest import assert_one_line_error

    shutil.copytree(sentitune.ENGLISH_MODEL_PATH, tmp_path / "m")
    damage_weights(tmp_path / "m" / "adapter_model.safetensors", how)
    assert_one_line_error(cli("predict", "--model-path", tmp_path / "m", "great"), message)


@pytest.mark.parametrize("how", ["truncated", "bad header"])
def test_damaged_weights_without_recorded_digests_still_fail_in_one_line(cli, tmp_path, how):
    """Artifacts written before digests existed: the deserializer's error, as one line, exit 2."""
    from conftest import assert_one_line_error

    target = copy_with_meta(sentitune.ENGLISH_MODEL_PATH, tmp_path / "m", digests=None)
    damage_weights(target / "adapter_model.safetensors", how)
    assert_one_line_error(cli("predict", "--model-path", target, "great"), "cannot load model from")


@pytest.mark.parametrize("recorded", [True, False])
def test_a_missing_tokenizer_is_one_line_at_load(tmp_path, recorded):
    """Listed in ``files`` (new artifacts) or not (older ones): either way one line naming tokenizer.json."""
    target = copy_with_meta(sentitune.ENGLISH_MODEL_PATH, tmp_path / "m")
    if not recorded:
        copy_meta = json.loads((target / "sentitune.json").read_text())
        copy_meta["files"] = ["adapter_config.json", "adapter_model.safetensors"]
        copy_meta["digests"] = {k: v for k, v in copy_meta["digests"].items() if k in copy_meta["files"]}
        (target / "sentitune.json").write_text(json.dumps(copy_meta))
    (target / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="incomplete: missing tokenizer.json"):
        sentitune.load(target)


def test_hashing_the_default_model_at_load_is_cheap():
    """read_meta hashes every weight file; for the ~6 MB default model that must stay far below
    the model's own load time (seconds). Generous bound: a loaded CI machine, not a benchmark."""
    import time

    start = time.perf_counter()
    for _ in range(5):
        sentitune.artifact.read_meta(sentitune.ENGLISH_MODEL_PATH)
    assert (time.perf_counter() - start) / 5 < 0.25
