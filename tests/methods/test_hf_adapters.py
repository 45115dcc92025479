"""Averaging LoRA artifacts (a model soup) on the shipped default model's real adapter."""

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import sentitune
from sentitune.artifact import read_meta, write_meta
from sentitune.errors import SentituneError
from sentitune.methods.hf import average_adapters, low_rank

TEXTS = ["The hotel was lovely and the staff were kind.", "Worst purchase I ever made.",
         "I don't think the sequel is any better.", "ok"]


def other_adapter(tmp_path, name="other", change=-1.0, head_shift=0.05):
    """The shipped adapter with every weight change times ``change`` (reversed by default) and the
    head moved: another LoRA artifact of the same base and rank, whose predictions differ from the
    shipped model's."""
    out = shutil.copytree(sentitune.ENGLISH_MODEL_PATH, tmp_path / name)
    meta = read_meta(out)
    weights = load_file(str(out / "adapter_model.safetensors"))
    weights = {k: v * change if "lora_B" in k else v + head_shift if "classifier" in k else v
               for k, v in weights.items()}
    save_file(weights, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    write_meta(out, meta)  # new digests
    return out


def merged_weights(path) -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in sentitune.load(path, precision="fp32").model.state_dict().items()}


def test_the_average_of_two_adapters_is_the_mean_of_their_weights(tmp_path):
    other = other_adapter(tmp_path)
    soup_dir = tmp_path / "soup"
    meta = average_adapters([sentitune.ENGLISH_MODEL_PATH, other], soup_dir)
    assert meta.options["lora"]["r"] == 2 * read_meta(other).options["lora"]["r"]
    # exact: the soup's merged weights are the mean of the two merged models' weights
    a, b, soup = merged_weights(sentitune.ENGLISH_MODEL_PATH), merged_weights(other), merged_weights(soup_dir)
    changed = [k for k in a if not torch.allclose(a[k], b[k])]
    assert len(changed) > 30  # every adapted projection and the head
    for k in a:
        torch.testing.assert_close(soup[k], (a[k] + b[k]) / 2, atol=2e-5, rtol=1e-4)
    # and it loads and predicts like any artifact, differently from both of its parts
    p = {name: sentitune.load(d, precision="fp32").predict_proba(TEXTS)[:, 1]
         for name, d in (("a", sentitune.ENGLISH_MODEL_PATH), ("b", other), ("soup", soup_dir))}
    assert not np.allclose(p["soup"], p["a"], atol=1e-3) and not np.allclose(p["soup"], p["b"], atol=1e-3)


def test_an_adapter_averaged_with_itself_predicts_as_before(tmp_path):
    soup = average_adapters([sentitune.ENGLISH_MODEL_PATH] * 2, tmp_path / "soup")
    assert soup.temperature == pytest.approx(read_meta(sentitune.ENGLISH_MODEL_PATH).temperature)
    before = sentitune.load(sentitune.ENGLISH_MODEL_PATH, precision="fp32").predict_proba(TEXTS)
    np.testing.assert_allclose(sentitune.load(tmp_path / "soup", precision="fp32").predict_proba(TEXTS), before,
                               atol=1e-5)


def test_a_soup_in_float16_or_cut_to_one_rank_is_one_adapter_in_size(tmp_path):
    r = read_meta(sentitune.ENGLISH_MODEL_PATH).options["lora"]["r"]
    one_adapter = (sentitune.ENGLISH_MODEL_PATH / "adapter_model.safetensors").stat().st_size
    other = other_adapter(tmp_path)
    meta = average_adapters([sentitune.ENGLISH_MODEL_PATH, other], tmp_path / "soup", rank=r)
    assert meta.options["lora"]["r"] == r
    assert (tmp_path / "soup" / "adapter_model.safetensors").stat().st_size == pytest.approx(one_adapter, rel=0.01)
    # float16 factors at the exact rank 2r: one adapter's bytes too, and the exact soup's predictions
    average_adapters([sentitune.ENGLISH_MODEL_PATH, other], tmp_path / "exact")
    meta = average_adapters([sentitune.ENGLISH_MODEL_PATH, other], tmp_path / "half", half=True)
    assert meta.options["lora"]["r"] == 2 * r and meta.training["adapter_dtype"] == "float16"
    assert (tmp_path / "half" / "adapter_model.safetensors").stat().st_size == pytest.approx(one_adapter, rel=0.02)
    exact, half = (sentitune.load(tmp_path / d, precision="fp32").predict_proba(TEXTS) for d in ("exact", "half"))
    np.testing.assert_allclose(half, exact, atol=2e-3)
    # a model averaged with itself has rank r already: compressing it to r loses nothing
    average_adapters([sentitune.ENGLISH_MODEL_PATH] * 2, tmp_path / "self", rank=r)
    before = sentitune.load(sentitune.ENGLISH_MODEL_PATH, precision="fp32").predict_proba(TEXTS)
    np.testing.assert_allclose(sentitune.load(tmp_path / "self", precision="fp32").predict_proba(TEXTS), before,
                               atol=1e-4)


def test_a_weighted_soup_of_a_soup_and_one_more_model_is_the_soup_of_all(tmp_path):
    # the shipped default averages two seeds; a third seed joins it with weights 2:1
    b, c = other_adapter(tmp_path), other_adapter(tmp_path, "third", change=0.5, head_shift=-0.08)
    parts = [sentitune.ENGLISH_MODEL_PATH, b, c]
    average_adapters(parts, tmp_path / "all")
    average_adapters(parts[:2], tmp_path / "two")
    meta = average_adapters([tmp_path / "two", c], tmp_path / "joined", weights=[2, 1])
    r = read_meta(c).options["lora"]["r"]
    assert meta.options["lora"]["r"] == 3 * r and meta.training["averaged_weights"] == pytest.approx([2 / 3, 1 / 3])
    everything, joined = merged_weights(tmp_path / "all"), merged_weights(tmp_path / "joined")
    for k in everything:
        torch.testing.assert_close(joined[k], everything[k], atol=2e-5, rtol=1e-4)
    # and unequal weights are not the plain mean
    average_adapters(parts[:2], tmp_path / "tilted", weights=[3, 1])
    a, other, tilted, plain = (merged_weights(d) for d in (sentitune.ENGLISH_MODEL_PATH, b, tmp_path / "tilted",
                                                            tmp_path / "two"))
    for k in ("classifier.weight", "bert.encoder.layer.0.attention.self.query.weight"):
        torch.testing.assert_close(tilted[k], (3 * a[k] + other[k]) / 4, atol=2e-5, rtol=1e-4)
        assert not torch.allclose(tilted[k], plain[k])


def test_low_rank_gives_the_closest_matrix_of_that_rank():
    weights = load_file(str(sentitune.ENGLISH_MODEL_PATH / "adapter_model.safetensors"))
    name = next(k for k in weights if "lora_A" in k)
    a, b = weights[name], weights[name.replace("lora_A", "lora_B")]
    r = a.shape[0]
    torch.manual_seed(0)  # a second adapter of the same shapes and scale
    a2, b2 = torch.randn_like(a) * a.std(), torch.randn_like(b) * b.std()
    big_a, big_b = torch.cat([a, a2], 0), torch.cat([b, b2], 1) / 2
    mean_change = (big_b @ big_a).double()
    small_a, small_b = low_rank(big_a, big_b, r)
    assert small_a.shape == a.shape and small_b.shape == b.shape
    # Eckart-Young: the error of the best rank-r matrix is the norm of the singular values it drops
    error = torch.linalg.norm(small_b.double() @ small_a.double() - mean_change)
    dropped = torch.linalg.norm(torch.linalg.svdvals(mean_change)[r:])
    assert dropped > 0 and error.item() == pytest.approx(dropped.item(), rel=1e-3)


def test_other_scales_bad_weights_and_an_output_among_the_inputs_are_refused(tmp_path):
    other = shutil.copytree(sentitune.ENGLISH_MODEL_PATH, tmp_path / "r8")
    meta = read_meta(other)
    meta.options["lora"]["r"] = 8
    write_meta(other, meta)
    with pytest.raises(SentituneError, match="one base model and one alpha/r"):  # r=8 with the same alpha
        average_adapters([sentitune.ENGLISH_MODEL_PATH, other], tmp_path / "soup")
    for weights in ([1], [1, 0], [2, -1]):
        with pytest.raises(SentituneError, match="one positive weight per model averaged"):
            average_adapters([sentitune.ENGLISH_MODEL_PATH] * 2, tmp_path / "soup", weights=weights)
    with pytest.raises(SentituneError, match="one of the models averaged"):  # it would be deleted first
        average_adapters([sentitune.ENGLISH_MODEL_PATH, other], other)
    assert (other / "sentitune.json").exists()
