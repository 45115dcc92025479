"""The CLI contract, through the real `sentitune` entry point in a subprocess (exit codes included)."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import assert_one_line_error


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "sentitune", *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_predict_with_the_shipped_default_model():
    out = run("predict", "I absolutely love this product!").stdout
    label, confidence, text = out.strip().split("\t")
    assert label == "POSITIVE" and float(confidence) > 0.5 and text == "I absolutely love this product!"
    record = json.loads(run("predict", "--json", "This was a complete waste of money.").stdout)
    assert set(record) == {"text", "label", "confidence", "probabilities"}
    assert record["label"] == "NEGATIVE"
    assert record["probabilities"]["NEGATIVE"] == pytest.approx(record["confidence"])


def test_predict_file_formats_and_output(tmp_path, tfidf_model_dir):
    (tmp_path / "lines.txt").write_text("great value, would buy again\nbroke after two days\n")
    pd.DataFrame({"review": ["lovely staff and food", "rude and slow"]}).to_csv(tmp_path / "r.csv", index=False)
    out = run("predict", "--model-path", tfidf_model_dir, "--json", "--file", tmp_path / "lines.txt").stdout
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["great value, would buy again", "broke after two days"]
    run("predict", "--model-path", tfidf_model_dir, "--file", tmp_path / "r.csv", "--text-column", "review",
        "--output", tmp_path / "out.jsonl")
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in written] == ["lovely staff and food", "rude and slow"]


def test_bad_input_gives_one_line_errors(tmp_path, tfidf_model_dir, cli):
    # in-process: the message; the exit status of the real entry point is checked once below
    assert_one_line_error(cli("predict", ""), "text 0 is empty")
    (tmp_path / "bad.jsonl").write_bytes(b"\xff\xfe{not json")
    assert_one_line_error(cli("predict", "--file", tmp_path / "bad.jsonl"), "cannot read")
    pd.DataFrame({"review": ["x"]}).to_csv(tmp_path / "r.csv", index=False)
    assert_one_line_error(cli("predict", "--file", tmp_path / "r.csv", "--text-column", "body"), "no column 'body'")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tfidf_model_dir.iterdir():
        if f.name != "tfidf.joblib":
            (broken / f.name).write_bytes(f.read_bytes())
    assert_one_line_error(cli("predict", "--model-path", broken, "hello there"), "missing tfidf.joblib")
    assert_one_line_error(cli("train", "--method", "nope", "--output-dir", tmp_path / "x"), "unknown method")


def test_the_entry_point_exits_2_with_one_line_on_a_user_error():
    assert_one_line_error(run("evaluate", check=False), "give --test-file F, --suite or --behaviour")


def test_models_average_writes_a_soup_and_refuses_what_it_cannot_average(tmp_path, tfidf_model_dir, cli):
    from sentitune import ENGLISH_MODEL_PATH
    from sentitune.data import sample_path

    soup = tmp_path / "soup"
    out = run("models", "average", ENGLISH_MODEL_PATH, ENGLISH_MODEL_PATH, "--out", soup, "--rank", 8,
              "--val-file", sample_path("val")).stdout
    assert "LoRA rank 8" in out and "temperature" in out
    meta = json.loads((soup / "sentitune.json").read_text())
    assert meta["options"]["lora"]["r"] == 8 and meta["training"]["averaged"] == [str(ENGLISH_MODEL_PATH)] * 2
    assert meta["metrics"]["val"]["accuracy"] > 0.8  # the calibrated soup's, on --val-file
    label = run("predict", "--model-path", soup, "--json", "A wonderful, moving film.").stdout
    assert json.loads(label)["label"] == "POSITIVE"
    assert_one_line_error(cli("models", "average", ENGLISH_MODEL_PATH, ENGLISH_MODEL_PATH, "--out", soup), "exists")
    assert_one_line_error(cli("models", "average", ENGLISH_MODEL_PATH, tfidf_model_dir, "--out", tmp_path / "x"),
                          "only LoRA artifacts")
    assert_one_line_error(cli("models", "average", ENGLISH_MODEL_PATH, "--out", tmp_path / "y"), "two or more")
    assert_one_line_error(cli("models", "average", ENGLISH_MODEL_PATH, ENGLISH_MODEL_PATH, "--out", tmp_path / "z",
                              "--val-file", tmp_path / "missing.jsonl"), "input not found")
    assert not (tmp_path / "z").exists()  # nothing written, so the corrected rerun is not refused
    for weights, problem in (("2,x", "numbers separated by commas"), ("1", "one positive weight per model")):
        assert_one_line_error(cli("models", "average", ENGLISH_MODEL_PATH, ENGLISH_MODEL_PATH, "--out",
                                  tmp_path / "w", "--weights", weights), problem)


def test_data_prepare_then_train_tfidf(tmp_path):
    rows = [{"text": f"the food was {'wonderful' if i % 2 else 'terrible'} number {i}", "stars": 5 if i % 2 else 1}
            for i in range(200)]
    pd.DataFrame(rows).to_csv(tmp_path / "reviews.csv", index=False)
    out = run("data", "prepare", tmp_path / "reviews.csv", "--out", tmp_path / "data").stdout
    assert "200 rows read" in out
    assert sum(1 for _ in open(tmp_path / "data" / "train.jsonl")) == 160
    run("train", "--method", "tfidf", "--train", tmp_path / "data" / "train.jsonl", "--val", tmp_path / "data" / "val.jsonl",
        "--output-dir", tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "sentitune.json").read_text())
    assert meta["method"] == "tfidf" and meta["metrics"]["val"]["accuracy"] > 0.9
    assert "POSITIVE" in run("predict", "--model-path", tmp_path / "model", "the food was wonderful").stdout


def test_predict_warns_when_the_vocabulary_cannot_read_the_text():
    import sentitune  # the English model itself: the default routes Chinese elsewhere (tests/methods/test_router.py)

    english = sentitune.ENGLISH_MODEL_PATH
    proc = run("predict", "--model-path", english, "这部电影太好看了，我非常喜欢", "服务态度很差，再也不来了")
    assert "tokens are unknown to the all-minilm-l6-v2 tokenizer" in proc.stderr
    assert len(proc.stdout.splitlines()) == 2  # still answers
    assert "unknown" not in run("predict", "--model-path", english, "a fine, warm film").stderr
