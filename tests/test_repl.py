"""`sentitune predict --interactive`: the loop in-process on a tfidf model, and through a real
pseudo-terminal on the shipped default model (readline history, colour bar, exit status)."""

from __future__ import annotations

import io
import json
import os
import sys

import pytest
from conftest import assert_one_line_error
from rich.console import Console

from sentitune.repl import Repl

POSITIVE_TEXT = "I absolutely love this wonderful film, a great delight"
NEGATIVE_TEXT = "Terrible, boring and a complete waste of money"


def reader(lines: list[str]):
    """``input`` replaced by a script of lines; end of input (Ctrl-D) after the last."""
    pending = iter(lines)

    def read(prompt: str) -> str:
        try:
            return next(pending)
        except StopIteration:
            raise EOFError from None

    return read


@pytest.fixture
def session(tfidf_model_dir):
    out = io.StringIO()
    return Repl(tfidf_model_dir, Console(file=out, width=100, color_system=None)), out


def test_model_command_switches_to_a_preset_by_name(session):
    repl, out = session
    assert repl.handle(":model fast")
    assert repl.model.meta.method == "router" and repl.model_name == "fast"
    assert repl.handle(":model no-such-preset-or-dir")  # one line, and the loop keeps the model it had
    assert "presets: default, fast, accurate" in out.getvalue() and repl.model_name == "fast"


def test_text_shows_label_and_bar_then_json_toggles(session):
    repl, out = session
    assert repl.handle(POSITIVE_TEXT)
    first = out.getvalue()
    assert "POSITIVE" in first and "━" in first
    repl.handle(":json")
    start = len(out.getvalue())
    repl.handle(NEGATIVE_TEXT)
    record = json.loads(out.getvalue()[start:].strip().splitlines()[-1])
    assert record["text"] == NEGATIVE_TEXT and record["label"] == "NEGATIVE"
    assert record["confidence"] == pytest.approx(max(record["probabilities"].values()))


def test_bad_model_is_one_line_and_the_model_stays(session):
    repl, out = session
    before = repl.model
    assert repl.handle(":model /nonexistent")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model directory not found: /nonexistent")
    assert "presets: default" in lines[0]
    assert repl.model is before and repl.model_name != "/nonexistent"
    repl.handle(POSITIVE_TEXT)
    assert "POSITIVE" in out.getvalue()


def test_model_switches_to_a_directory(session, tfidf_model_dir, tmp_path):
    repl, out = session
    repl.handle(f":model {tfidf_model_dir}")
    assert repl.model_name == str(tfidf_model_dir) and "(tfidf)" in out.getvalue()


def test_unknown_command_and_quit_and_eof(session):
    repl, out = session
    assert repl.handle(":frobnicate")
    assert out.getvalue().strip() == "error: unknown command :frobnicate; :help lists them"
    assert repl.handle("   ")  # a blank line is no text
    assert not repl.handle(":quit")
    assert repl.run(reader([":help", POSITIVE_TEXT])) == 0  # ends on EOF
    assert ":model NAME_OR_PATH" in out.getvalue()


def test_cli_interactive_reads_piped_lines(cli, tfidf_model_dir):
    lines = [POSITIVE_TEXT, ":json", ":model /nonexistent", NEGATIVE_TEXT, ":quit", "never read"]
    result = cli("predict", "-i", "--model-path", tfidf_model_dir, input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.stderr
    first, second = result.stdout.strip().splitlines()  # results only: notes and errors go to stderr
    assert first.startswith("POSITIVE") and "━" in first
    assert json.loads(second)["label"] == "NEGATIVE"
    assert [l for l in result.stderr.splitlines() if l.startswith("error:")] == [
        f"error: model directory not found: /nonexistent (presets: default, fast, accurate); still using {tfidf_model_dir}"]


def test_cli_interactive_refuses_texts(cli):
    assert_one_line_error(cli("predict", "-i", "some text"), "--interactive reads texts at its prompt")


@pytest.mark.slow
def test_pseudo_terminal_session_on_the_default_model(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, SENTITUNE_CACHE=str(tmp_path))  # a fresh history file
    child = pexpect.spawn(sys.executable, ["-m", "sentitune", "predict", "-i"], env=env, encoding="utf-8", timeout=120)
    try:
        child.expect_exact("> ")
        child.sendline(POSITIVE_TEXT)
        child.expect_exact("> ")
        assert "POSITIVE" in child.before and "━" in child.before
        child.sendline(":json")
        child.expect_exact("json output on")
        child.sendline(NEGATIVE_TEXT)
        child.expect(r"\{.*\}\r\n")
        assert json.loads(child.after)["label"] == "NEGATIVE"
        child.expect_exact("> ")
        child.send("\x1b[A\r")  # up arrow: readline recalls the last line, Enter sends it again
        child.expect(r"\{.*\}\r\n")
        assert json.loads(child.after)["text"] == NEGATIVE_TEXT
        child.expect_exact("> ")
        child.sendline(":model /nonexistent")
        child.expect_exact("> ")
        errors = [line for line in child.before.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "model directory not found: /nonexistent" in errors[0]
        child.sendline(POSITIVE_TEXT)  # still running, on the default model
        child.expect(r"\{.*\}\r\n")
        assert json.loads(child.after)["label"] == "POSITIVE"
        child.sendline("这部电影太好看了")  # the default routes Chinese to its Chinese model: no warning
        child.expect(r"\{.*\}\r\n")
        assert json.loads(child.after)["label"] == "POSITIVE" and "warning" not in child.before
        child.sendline("Это ужасный фильм")  # Russian has no route: the English model scores it, and says so
        child.expect_exact("warning: ")
        child.expect(r"\{.*\}\r\n")
        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    history = (tmp_path / "repl_history").read_text().splitlines()
    assert history[:3] == [POSITIVE_TEXT, ":json", NEGATIVE_TEXT] and history[-1] == ":quit"
