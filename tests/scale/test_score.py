"""`sentitune score`: formats, bad rows kept, local vs Ray row for row, kill and resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import sentitune
from sentitune.errors import SentituneError
from sentitune.scale.score import run_scoring

BAD = {7: "", 19: "   ", 23: None}  # row -> a value that is not scorable text


@pytest.fixture(scope="module")
def rows_5000(sample_train, sample_test) -> pd.DataFrame:
    """5,000 rows of real reviews with ids, a category column, and four unscorable texts."""
    texts = [r["text"] for r in sample_train + sample_test]
    frame = pd.DataFrame(
        {"review_id": [f"r{i:05d}" for i in range(5000)], "text": [texts[i % len(texts)] for i in range(5000)],
         "shop": [f"shop{i % 7}" for i in range(5000)]}
    )
    frame["text"] = frame["text"].astype(object)
    for i, value in BAD.items():
        frame.at[i, "text"] = value
    return frame


def test_local_engine_keeps_every_row_and_flags_bad_ones(tmp_path, rows_5000, tfidf_model_dir):
    src = tmp_path / "in.parquet"
    rows_5000.to_parquet(src)
    summary = run_scoring(src, tmp_path / "out.parquet", tfidf_model_dir, id_column="review_id", chunk_rows=1200)
    assert summary["rows"] == 5000 and summary["errors"] == 3 and summary["scored"] == 4997
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["review_id", "text", "shop", "label", "confidence", "error"]
    assert out["review_id"].tolist() == rows_5000["review_id"].tolist()
    assert out.loc[list(BAD), "label"].isna().all()
    assert out.loc[list(BAD), "error"].tolist() == ["empty text", "empty text", "missing text"]
    good = out.drop(index=list(BAD))
    model = sentitune.load(tfidf_model_dir)
    assert good["label"].tolist() == model.predict(good["text"].tolist())
    assert good["confidence"].between(0.5, 1.0).all() and good["error"].isna().all()
    assert not (tmp_path / "out.parquet.parts").exists()  # checkpoints are removed once merged


def test_ray_engine_matches_local_row_for_row(tmp_path, rows_5000, tfidf_model_dir):
    pytest.importorskip("ray")
    src = tmp_path / "in"
    src.mkdir()
    rows_5000.iloc[:2500].to_parquet(src / "a.parquet")  # a directory of files, read in name order
    rows_5000.iloc[2500:].to_parquet(src / "b.parquet")
    local = run_scoring(src, tmp_path / "local.jsonl", tfidf_model_dir, id_column="review_id")
    ray = run_scoring(src, tmp_path / "ray.jsonl", tfidf_model_dir, engine="ray", id_column="review_id", workers=2)
    assert ray["rows"] == local["rows"] == 5000 and ray["errors"] == local["errors"] == 3 and ray["workers"] == 2
    a = pd.read_json(tmp_path / "local.jsonl", lines=True)
    b = pd.read_json(tmp_path / "ray.jsonl", lines=True)
    assert b["review_id"].tolist() == a["review_id"].tolist() == rows_5000["review_id"].tolist()
    assert b["label"].tolist() == a["label"].tolist()
    assert (b["confidence"].fillna(-1) - a["confidence"].fillna(-1)).abs().max() < 1e-9


def test_formats_jsonl_in_jsonl_gz_out_and_csv_round_trip(tmp_path, rows_5000, tfidf_model_dir):
    small = rows_5000.iloc[:300].rename(columns={"text": "body", "review_id": "id"})
    small.at[42, "body"] = 12345  # a number where text belongs (JSON allows it; Parquet would not)
    small.to_json(tmp_path / "in.jsonl", orient="records", lines=True)
    s = run_scoring(tmp_path / "in.jsonl", tmp_path / "out.jsonl.gz", tfidf_model_dir, text_column="body", id_column="id")
    out = pd.read_json(tmp_path / "out.jsonl.gz", lines=True, dtype=False)
    assert s["rows"] == 300 and s["errors"] == 4 and out["id"].tolist() == small["id"].tolist()
    assert out.at[42, "error"] == "not text (int)" and out.at[42, "body"] == "12345"
    out.to_csv(tmp_path / "out.csv", index=False)
    s = run_scoring(tmp_path / "out.csv", tmp_path / "again.csv", tfidf_model_dir, text_column="body")
    again = pd.read_csv(tmp_path / "again.csv")
    # the first run's label column is kept, renamed, beside the new one
    assert {"label_input", "label", "confidence", "error"} <= set(again.columns)
    assert again["label"].fillna("-").tolist()[:42] == out["label"].fillna("-").tolist()[:42]
    assert again.at[42, "label"] == sentitune.load(tfidf_model_dir).predict(["12345"])[0]  # CSV: "12345" is text


def test_bad_arguments_are_clear_errors(tmp_path, rows_5000, tfidf_model_dir):
    rows_5000.iloc[:50].to_parquet(tmp_path / "in.parquet")
    with pytest.raises(SentituneError, match="no column 'review' for --text-column"):
        run_scoring(tmp_path / "in.parquet", tmp_path / "o.parquet", tfidf_model_dir, text_column="review")
    with pytest.raises(SentituneError, match="OUTPUT must end in"):
        run_scoring(tmp_path / "in.parquet", tmp_path / "o.xlsx", tfidf_model_dir)
    with pytest.raises(SentituneError, match="input not found"):
        run_scoring(tmp_path / "missing.csv", tmp_path / "o.csv", tfidf_model_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "sentitune", "score", str(tmp_path / "in.parquet"), str(tmp_path / "o.csv"),
         "--model-path", str(tfidf_model_dir), "--id-column", "nope"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2 and "no column 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_killed_run_resumes_with_every_row_exactly_once(tmp_path, rows_5000):
    """The shipped transformer model, killed (SIGKILL) after a few checkpointed chunks, then rerun."""
    src = tmp_path / "in.jsonl"
    rows = rows_5000.iloc[:3000]
    rows.to_json(src, orient="records", lines=True)
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "sentitune", "score", str(src), str(out), "--id-column", "review_id", "--chunk-rows", "200"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    parts = tmp_path / "out.csv.parts"
    deadline = time.monotonic() + 300
    while len(list(parts.glob("part-*.parquet"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("part-*.parquet")))
    assert 2 <= done_before < 15 and not out.exists(), "the run should have been killed midway"

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["resumed_chunks"] >= done_before and summary["rows"] == 3000
    scored = pd.read_csv(out)
    assert scored["review_id"].tolist() == rows["review_id"].tolist()  # every id, once, in order
    assert scored["label"].notna().sum() == 3000 - len(BAD)


def test_ray_reads_csv_and_headerless_tsv_by_the_local_rules(tmp_path, tfidf_model_dir):
    """Ray once parsed CSV itself (pyarrow: "NA"/"null" as missing, digits as numbers, a headerless
    TSV's first row as its header); now its read tasks run the local reader, row for row the same."""
    pytest.importorskip("ray")
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.csv").write_text('id,text\n1,great phone\n2,NA\n3,\n4,12345\n5,"null, or not"\n')
    (src / "b.tsv").write_text('服务太差了\t0\nlovely "quoted" staff\t1\n')
    local = run_scoring(src, tmp_path / "local.jsonl", tfidf_model_dir, chunk_rows=2)
    ray = run_scoring(src, tmp_path / "ray.jsonl", tfidf_model_dir, engine="ray", chunk_rows=2, workers=1)
    assert ray["rows"] == local["rows"] == 7 and ray["errors"] == local["errors"] == 1
    a = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert [r["text"] for r in a] == ["great phone", "NA", None, "12345", "null, or not", "服务太差了", 'lovely "quoted" staff']
    assert [r["id"] for r in a[:5]] == ["1", "2", "3", "4", "5"] and a[5]["label_input"] == "0"
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if k != "confidence"} == {k: v for k, v in y.items() if k != "confidence"}
        assert x["confidence"] == pytest.approx(y["confidence"]) if x["confidence"] is not None else y["confidence"] is None


def test_parquet_output_of_a_column_empty_in_the_first_chunk(tmp_path, tfidf_model_dir):
    (tmp_path / "in.csv").write_text("text,note\ngreat phone,\nawful service,\nfine food,see photo\n")
    run_scoring(tmp_path / "in.csv", tmp_path / "out.parquet", tfidf_model_dir, chunk_rows=2)
    import pyarrow.parquet as pq

    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column("note").to_pylist() == [None, None, "see photo"] and out.column("label").null_count == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.parquet"]  # no temporary, no parts


def test_an_unwritable_input_leaves_no_output(tmp_path, tfidf_model_dir):
    (tmp_path / "in.csv").write_text("text\n")
    with pytest.raises(SentituneError, match="the input has no rows"):
        run_scoring(tmp_path / "in.csv", tmp_path / "out.jsonl", tfidf_model_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.jsonl.parts"]  # no OUTPUT, no temporary
