"""`sentitune predict`: standard input, --format, rows kept with an error, streaming in bounded memory."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys

import pandas as pd
import pytest

from conftest import assert_one_line_error

SENTITUNE = [sys.executable, "-m", "sentitune"]


def test_stdin_lines_to_jsonl_with_the_shipped_default_model():
    proc = subprocess.run(
        [*SENTITUNE, "predict", "--format", "jsonl"], input="great phone\nawful service\n",
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in records] == ["great phone", "awful service"]
    assert [r["label"] for r in records] == ["POSITIVE", "NEGATIVE"]
    assert proc.stderr.strip().splitlines()[-1] == "2 rows: no errors"


def test_formats_and_file_dash(cli, tfidf_model_dir):
    lines = "lovely staff and great food\n\nrude and slow service\n"  # a blank line is no row
    table = cli("predict", "--model-path", tfidf_model_dir, input=lines)
    assert table.exit_code == 0, table.stderr
    assert [row.split("\t")[0] for row in table.stdout.splitlines()] == ["POSITIVE", "NEGATIVE"]
    as_json = cli("predict", "--model-path", tfidf_model_dir, "--json", "--file", "-", input=lines)
    jsonl = cli("predict", "--model-path", tfidf_model_dir, "--format", "jsonl", input=lines)
    assert as_json.stdout == jsonl.stdout and len(jsonl.stdout.splitlines()) == 2
    rows = list(csv.DictReader(io.StringIO(cli("predict", "--model-path", tfidf_model_dir, "--format", "csv", input=lines).stdout)))
    assert [r["text"] for r in rows] == ["lovely staff and great food", "rude and slow service"]
    assert [r["label"] for r in rows] == [json.loads(x)["label"] for x in jsonl.stdout.splitlines()]
    assert rows[0]["error"] == "" and 0.5 < float(rows[0]["confidence"]) <= 1


def test_bad_flags_and_empty_input_are_one_line_errors(cli, tfidf_model_dir):
    assert_one_line_error(cli("predict", "--model-path", tfidf_model_dir, "--format", "xml", "hi"), "unknown --format 'xml'")
    assert_one_line_error(cli("predict", "--json", "--format", "csv", "hi"), "--json means --format jsonl")
    assert_one_line_error(cli("predict", "--model-path", tfidf_model_dir, input=""), "standard input holds no texts")
    assert_one_line_error(cli("predict", "--model-path", tfidf_model_dir, "--chunk-rows", "0", "x"), "--chunk-rows")


def test_a_terminal_on_stdin_with_no_text_is_the_one_line_error(tmp_path):
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run([*SENTITUNE, "predict"], stdin=terminal, capture_output=True, text=True, timeout=120)
    finally:
        os.close(controller)
        os.close(terminal)
    assert_one_line_error(proc, "nothing to classify: give TEXT arguments or --file")


def test_invisible_only_lines_are_kept_as_errors_not_a_failed_run(cli, tmp_path, tfidf_model_dir):
    """Regression: a line of only a zero-width space passed the row check, then failed the whole
    chunk in the predictor ("text 1 is empty") with nothing written."""
    (tmp_path / "lines.txt").write_text("lovely staff and great food\n\u200b\u202e\nrude and slow service\n")
    result = cli("predict", "--model-path", tfidf_model_dir, "--file", tmp_path / "lines.txt", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in records] == ["POSITIVE", None, "NEGATIVE"]
    assert records[1]["error"] == "empty text"


def test_an_empty_csv_field_keeps_the_row_with_an_error_like_score(cli, tmp_path, tfidf_model_dir):
    """Regression: one empty field used to abort the whole run ("text 1 is empty") with no output."""
    (tmp_path / "r.csv").write_text("id,review\n1,lovely staff and great food\n2,\n3,rude and slow service\n")
    result = cli("predict", "--model-path", tfidf_model_dir, "--file", tmp_path / "r.csv", "--json")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in records] == ["POSITIVE", None, "NEGATIVE"]
    assert records[1] == {"text": None, "label": None, "confidence": None, "probabilities": None, "error": "missing text"}
    assert "error" not in records[0]
    assert result.stderr.strip() == f"3 rows: 1 not classified (first: {tmp_path / 'r.csv'} row 2: missing text)"

    from sentitune.scale.score import run_scoring

    run_scoring(tmp_path / "r.csv", tmp_path / "scored.jsonl", tfidf_model_dir, text_column="review")
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert [s["label"] for s in scored] == [r["label"] for r in records]
    assert [s["error"] for s in scored] == [r.get("error") for r in records]


def test_output_is_written_atomically(cli, tmp_path, tfidf_model_dir):
    good = "\n".join(json.dumps({"text": f"great food number {i}"}) for i in range(30))
    (tmp_path / "in.jsonl").write_text(good + "\n{broken\n")
    out = tmp_path / "out.jsonl"
    out.write_text("the previous results\n")
    result = cli("predict", "--model-path", tfidf_model_dir, "--file", tmp_path / "in.jsonl", "--output", out, "--chunk-rows", "10")
    assert_one_line_error(result, "line 31")
    assert out.read_text() == "the previous results\n"  # three chunks were scored, none replaced it
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no temporary left
    (tmp_path / "in.jsonl").write_text(good + "\n")
    result = cli("predict", "--model-path", tfidf_model_dir, "--file", tmp_path / "in.jsonl", "--output", tmp_path / "o.csv",
                 "--chunk-rows", "7")
    assert result.exit_code == 0, result.stderr
    written = pd.read_csv(tmp_path / "o.csv")
    assert len(written) == 30 and written["label"].eq("POSITIVE").all()
    assert result.stderr.strip() == f"30 rows written to {tmp_path / 'o.csv'}: no errors"


def peak_rss_mib(args: list) -> float:
    """Peak resident memory of one `sentitune` run, from the kernel's accounting of that child."""
    proc = subprocess.Popen([*SENTITUNE, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.stderr.read().decode()
    proc.stderr.close()
    return usage.ru_maxrss / 1024  # KiB on Linux


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss units differ by platform")
def test_file_larger_than_a_chunk_streams_in_flat_memory(tmp_path, tfidf_model_dir):
    """Regression: a 200 MB file once passed 12 GB RSS; now 10x the rows cost (almost) no memory."""
    chunk = 5000
    words = ["great", "awful", "fine", "slow", "kind", "rude", "cheap", "fresh"]
    for name, n in (("small.txt", chunk), ("large.txt", 10 * chunk)):
        with open(tmp_path / name, "w") as fh:
            fh.writelines(f"{words[i % 8]} food and {words[i * 7 % 8]} staff, visit {i}\n" for i in range(n))
    runs = {}
    for name in ("small.txt", "large.txt"):
        out = tmp_path / f"{name}.jsonl"
        runs[name] = peak_rss_mib(["predict", "--model-path", tfidf_model_dir, "--file", tmp_path / name,
                                   "--chunk-rows", chunk, "--output", out])
        assert sum(1 for _ in open(out)) == (chunk if name == "small.txt" else 10 * chunk)
    assert runs["large.txt"] - runs["small.txt"] < 20, runs


TRICKY = [  # (text as written in the file, the text every reader gives)
    ("great phone", "great phone"), ("NA", "NA"), ("", None), ("12345", "12345"), ("null", "null"),
    ("  spaced out  ", "  spaced out  "), ("None", "None"), ("awful, truly awful", "awful, truly awful"),
]


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_the_same_file_gives_the_same_texts_through_every_path(cli, tmp_path, tfidf_model_dir, suffix):
    """Regression: `predict --file` read "NA"/"null" as texts and "" as an empty text, while `score`
    read all three as missing (and typed "12345" as a number chunk by chunk)."""
    from sentitune.data import read_table
    from sentitune.data.io import iter_table
    from sentitune.scale.score import run_scoring

    path = tmp_path / f"tricky{suffix}"
    pd.DataFrame({"id": range(len(TRICKY)), "text": [w for w, _ in TRICKY], "label": [1, 0] * 4}).to_csv(
        path, sep="\t" if suffix == ".tsv" else ",", index=False
    )
    expected = [t for _, t in TRICKY]
    assert read_table(path)["text"].tolist() == expected  # data prepare, train, evaluate
    assert [t for f in iter_table(path, chunk_rows=3) for t in f["text"]] == expected  # any chunking
    result = cli("predict", "--model-path", tfidf_model_dir, "--file", path, "--json", "--chunk-rows", "3")
    assert result.exit_code == 0, result.stderr
    predicted = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in predicted] == expected
    run_scoring(path, tmp_path / "scored.jsonl", tfidf_model_dir, chunk_rows=3)
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert [s["text"] for s in scored] == expected and [s["id"] for s in scored] == [str(i) for i in range(8)]
    assert [s["label"] for s in scored] == [r["label"] for r in predicted]
    assert [s["error"] for s in scored] == [r.get("error") for r in predicted] == [None, None, "missing text"] + [None] * 5
