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


ZEN = {25: "Zen 4", 26: "Zen 5"}  # AMD's cpu family numbers: both say only "AMD EPYC" in the model name


def cpu_title() -> str:
    """The CPU for a section title: the model name, and for AMD its Zen generation, which the name hides
    (Zen 4 runs 512-bit ops at half rate, Zen 5 at full: their figures must not share a section)."""
    from sentitune.methods.hardware import detect

    cpu = detect().cpu
    zen = ZEN.get(int(cpuinfo_number("cpu family", 0))) if "AMD" in cpu else None
    return f"{cpu}, {zen}" if zen else cpu


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
