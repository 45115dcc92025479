"""Which inference path is fastest on this machine, decided from what the CPU (or GPU) offers.

A CPU's instruction set decides whether bf16 or int8 arithmetic is native or emulated: bf16 ran the
default model 6.1x faster than the plain pipeline on a CPU with AMX, but on CPUs without AMX or
AVX512-BF16 it is emulated and slower than fp32. ``choose_precision`` is a pure function of the
flags so the rule can be tested for every kind of CPU on any machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# the flags that matter for transformer inference, as Linux /proc/cpuinfo names them
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")


@dataclass(frozen=True)
class Hardware:
    cpu: str
    flags: frozenset[str]
    cuda: bool = False

    def describe(self) -> str:
        have = [f for f in (*BF16_FLAGS, *INT8_FLAGS) if f in self.flags]
        return f"{self.cpu} ({', '.join(have) or 'no bf16/int8 instructions'})" + (", CUDA GPU" if self.cuda else "")


@dataclass(frozen=True)
class Choice:
    precision: str  # "fp32" or "bf16"
    reason: str


def choose_precision(hw: Hardware) -> Choice:
    """bf16 where the CPU computes it natively (AMX or AVX512-BF16), else fp32; on a GPU the torch
    path stays fp32 here (mixed precision on CUDA is the trainer's business)."""
    if hw.cuda:
        return Choice("fp32", "CUDA device: fp32 weights")
    native = [f for f in BF16_FLAGS if f in hw.flags]
    if native:
        return Choice("bf16", f"the CPU has {' and '.join(native)}: bf16 matrix multiplies are native")
    return Choice("fp32", "the CPU has no AMX or AVX512-BF16: bf16 would be emulated, fp32 is faster")


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return (model[1].strip() if model else "unknown CPU"), frozenset(flags[1].split() if flags else ())


@lru_cache(maxsize=1)
def detect() -> Hardware:
    """This machine's CPU model and flags (Linux; elsewhere no flags, so the safe fp32 path)."""
    try:
        cpu, flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        import platform

        cpu, flags = platform.processor() or platform.machine(), frozenset()
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    return Hardware(cpu, flags, cuda)


# bf16 is used by itself only where it gives fp32's label on this share of held-out texts
AGREEMENT_BAR = 0.995


def cpu_kind(hw: Hardware) -> str:
    """A file-name-safe name for the CPU model and the flags that change the arithmetic."""
    flags = "-".join(f for f in (*BF16_FLAGS, *INT8_FLAGS) if f in hw.flags) or "plain"
    return re.sub(r"[^A-Za-z0-9]+", "-", f"{hw.cpu}-{flags}").strip("-").lower()


def agreement_file(cache_dir: Path, artifact_key: str, hw: Hardware) -> Path:
    # per artifact and CPU kind: another CPU's bf16 kernels round differently, so it is measured again
    return Path(cache_dir) / "precision" / f"{artifact_key}-{cpu_kind(hw)}.json"


def cached_agreement(cache_dir: Path, artifact_key: str, hw: Hardware) -> float | None:
    """bf16's agreement with fp32 measured earlier for this artifact on this CPU kind, if any."""
    import json

    try:
        return float(json.loads(agreement_file(cache_dir, artifact_key, hw).read_text())["agreement"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not measured yet, or an unreadable record: measure again


def record_agreement(cache_dir: Path, artifact_key: str, hw: Hardware, agreement: float, texts: int) -> None:
    import json

    from sentitune.atomic import atomic_write_text

    path = agreement_file(cache_dir, artifact_key, hw)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"agreement": agreement, "texts": texts, "cpu": hw.describe()}))


def verified_choice(hw: Hardware, agreement: float | None) -> Choice:
    """``choose_precision``, kept only if bf16 gave fp32's label on >= AGREEMENT_BAR of held-out texts."""
    choice = choose_precision(hw)
    if choice.precision != "bf16" or agreement is None:
        return choice
    if agreement < AGREEMENT_BAR:
        return Choice("fp32", f"bf16 agreed with fp32 on {agreement:.2%} of held-out texts (< {AGREEMENT_BAR:.1%})")
    return Choice("bf16", f"{choice.reason}; agrees with fp32 on {agreement:.2%} of held-out texts")
