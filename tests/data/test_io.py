import gzip
import json

import pandas as pd
import pytest

from sentitune.data import read_table, read_texts
from sentitune.errors import DataError


def test_reads_every_format_to_the_same_rows(tmp_path):
    rows = [{"text": "loved every minute of it", "label": "positive"}, {"text": "a dull, lifeless film", "label": "negative"}]
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "a.csv", index=False)
    df.to_parquet(tmp_path / "a.parquet")
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    for name in ("a.csv", "a.parquet", "a.jsonl.gz"):
        got = read_table(tmp_path / name)
        assert got["text"].tolist() == df["text"].tolist(), name
        assert got["label"].tolist() == df["label"].tolist(), name


def test_headerless_tsv_in_both_column_orders(tmp_path):
    (tmp_path / "text_label.tsv").write_text("今天天气真好，心情愉快\t1\n服务太差了，再也不来\t0\n")
    (tmp_path / "label_text.tsv").write_text("1\t今天天气真好，心情愉快\n0\t服务太差了，再也不来\n")
    for name in ("text_label.tsv", "label_text.tsv"):
        df = read_table(tmp_path / name)
        assert df["text"].tolist() == ["今天天气真好，心情愉快", "服务太差了，再也不来"]
        assert df["label"].tolist() == ["1", "0"]


def test_datasets_directory(tmp_path):
    from datasets import Dataset

    Dataset.from_dict({"text": ["great product", "broke in a day"], "label": [1, 0]}).save_to_disk(tmp_path / "ds")
    assert read_table(tmp_path / "ds")["label"].tolist() == [1, 0]


def test_read_texts_plain_lines_and_column(tmp_path):
    (tmp_path / "t.txt").write_text("first text\n\nsecond text\n")
    assert read_texts(tmp_path / "t.txt") == ["first text", "second text"]
    pd.DataFrame({"review": ["x y z"]}).to_csv(tmp_path / "r.csv", index=False)
    assert read_texts(tmp_path / "r.csv") == ["x y z"]
    with pytest.raises(DataError, match="no column 'body'"):
        read_texts(tmp_path / "r.csv", text_column="body")


def test_unreadable_and_missing_files_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="input not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"\n')
    with pytest.raises(DataError, match="cannot read .*bad.jsonl"):
        read_table(tmp_path / "bad.jsonl")
    (tmp_path / "x.xlsx").write_text("?")
    with pytest.raises(DataError, match="unsupported file type"):
        read_table(tmp_path / "x.xlsx")
