"""Shared fixtures: the bundled sample, small real models trained once per session, a free port,
and the CLI run in-process.

Tests never write to the user's real ``~/.cache``: ``SENTITUNE_CACHE`` points into the checkout's
ignored ``.pytest_cache`` (kept between runs, so SmolLM2's one-time conversion is paid once per
checkout, not once per run) unless the caller set it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("SENTITUNE_CACHE", str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "sentitune"))
# fp32 unless a test asks for another path: auto would measure bf16's agreement for every model a test
# trains (two loads and 400 texts each) and make figures depend on the CPU; tests of auto set it themselves
os.environ.setdefault("SENTITUNE_PRECISION", "fp32")

import pytest

from sentitune.data import read_jsonl, sample_path


def free_port() -> int:
    """A loopback port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_line_error(result, fragment: str) -> None:
    """A user error: exit status 2 and one line on stderr naming the problem, no traceback.

    ``result`` is typer's CliRunner result or a finished subprocess."""
    status = getattr(result, "exit_code", getattr(result, "returncode", None))
    assert status == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


@pytest.fixture
def cli():
    """Run ``sentitune ARGS...`` in-process (typer's CliRunner); stdout and stderr kept apart."""
    from typer.testing import CliRunner

    from sentitune.cli import app

    runner = CliRunner()

    def invoke(*args, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


@pytest.fixture(scope="session")
def sample_train() -> list[dict]:
    return read_jsonl(sample_path("train"))


@pytest.fixture(scope="session")
def sample_test() -> list[dict]:
    return read_jsonl(sample_path("test"))


@pytest.fixture(scope="session")
def tfidf_model_dir(tmp_path_factory, sample_train):
    """A real tfidf model trained on the bundled sample (seconds): the fast model for API/scale tests."""
    from sentitune.methods.tfidf import TfidfModel

    out = tmp_path_factory.mktemp("tfidf")
    TfidfModel().fit(sample_train).save(out)
    return out
