"""Shared by every benchmark: machine description and writing one section of RESULTS.md.

Each benchmark owns the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; running one
benchmark rewrites its own section and leaves the others as they were.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEvery section was written by the script named in it; rerun that command to reproduce.\n"


def machine() -> str:
    try:
        import torch

        threads = f", torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        threads = ""
    try:
        import onnxruntime

        threads += f", onnxruntime {onnxruntime.__version__}"
    except ImportError:
        pass
    from sentitune.methods.hardware import detect  # the CPU model and the flags that pick the fast path

    return f"{detect().describe()}, {os.cpu_count()} CPUs, {platform.platform()}{threads}"


def cpuinfo_number(field: str, default: float) -> float:
    try:
        return float(next(line.split(":")[1] for line in open("/proc/cpuinfo") if line.split(":")[0].strip() == field))
    except (OSError, StopIteration, ValueError):
        return default


def zen_generation(family: int, flags: frozenset[str]) -> str | None:
    """AMD's Zen generation, which a model name of just "AMD EPYC" hides. cpu family 25 is both Zen 3
    (AVX2 only) and Zen 4 (AVX-512, at half rate): the flags tell them apart; 26 is Zen 5 (full-rate
    AVX-512), 23 Zen to Zen 2."""
    if family == 25:
        return "Zen 4" if "avx512f" in flags else "Zen 3"
    return {23: "Zen 2 or older", 26: "Zen 5"}.get(family)


def cpu_title() -> str:
    """The CPU for a section title: the model name, and for AMD its Zen generation (Zen 3 has no
    AVX-512, Zen 4 runs it at half rate, Zen 5 at full: their figures must not share a section)."""
    from sentitune.methods.hardware import detect

    hw = detect()
    zen = zen_generation(int(cpuinfo_number("cpu family", 0)), hw.flags) if "AMD" in hw.cpu else None
    return f"{hw.cpu}, {zen}" if zen else hw.cpu


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.1f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, body: str, command: str | None = None) -> Path:
    """Replace (or append) the section ``name`` with a heading, the command, machine, date and body."""
    command = command or "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- {name}:start -->\n## {title}\n\n`{command}`  \n{machine()}  \n{stamp}\n\n{body.strip()}\n<!-- {name}:end -->"
    )
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)
    return RESULTS
