import gzip
import io
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


def test_one_rule_for_types_and_missing_values(tmp_path):
    from sentitune.data.io import iter_table

    (tmp_path / "a.csv").write_text('id,text\n007,NA\n2,\n3,"12345"\n')
    assert read_table(tmp_path / "a.csv").to_dict("records") == [
        {"id": "007", "text": "NA"}, {"id": "2", "text": None}, {"id": "3", "text": "12345"}
    ]  # CSV has no types: every field a string as written, only an empty field missing
    lines = ['{"n": 1, "text": "a"}', '{"text": null}', '{"n": 3}', '{"n": 4, "text": 5}']
    (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n")
    chunks = [f.to_dict("records") for f in iter_table(tmp_path / "b.jsonl", chunk_rows=2)]
    # JSON values as JSON has them, whatever the chunk holds (pandas alone makes 3 -> 3.0 beside a null)
    assert chunks == [[{"n": 1, "text": "a"}, {"n": None, "text": None}], [{"n": 3, "text": None}, {"n": 4, "text": 5}]]
    pd.DataFrame({"text": ["x", None]}).to_parquet(tmp_path / "c.parquet")
    assert read_table(tmp_path / "c.parquet")["text"].tolist() == ["x", None]


def test_txt_is_a_table_only_when_it_looks_like_one(tmp_path):
    (tmp_path / "pairs.txt").write_text("服务太差了\t0\n很好\t1\n")
    (tmp_path / "header.txt").write_text("review\tstars\nfine\t5\n")
    (tmp_path / "lines.txt").write_text("a review with\ta tab inside\nanother one\n")
    assert read_table(tmp_path / "pairs.txt").to_dict("records") == [{"text": "服务太差了", "label": "0"}, {"text": "很好", "label": "1"}]
    assert read_table(tmp_path / "header.txt").to_dict("records") == [{"review": "fine", "stars": "5"}]
    assert read_texts(tmp_path / "lines.txt") == ["a review with\ta tab inside", "another one"]


def test_bad_json_names_the_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n\n[1, 2]\n')
    with pytest.raises(DataError, match=r"bad.jsonl: line 3 is a JSON list, not an object"):
        read_table(tmp_path / "bad.jsonl")


def test_stdin_lines_are_given_out_as_they_arrive():
    """A pipe fed slowly: the first line comes out before the writer has closed the pipe."""
    import os
    import signal

    from sentitune.data.io import iter_lines

    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as stream:
        os.write(write_end, "first text\r\n\n".encode())
        chunks = iter_lines(stream, chunk_rows=1000)
        before = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("waited for a full chunk instead of answering"))
        signal.alarm(10)  # a reader that waits for 1000 lines would hang here: fail instead
        try:
            assert next(chunks)["text"].tolist() == ["first text"]
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, before)
        os.write(write_end, b"second\nno newline at the end")
        os.close(write_end)
        assert [t for f in chunks for t in f["text"]] == ["second", "no newline at the end"]
    bad = iter_lines(io.BytesIO(b"ok\n\xff\xfe\n"), chunk_rows=10)
    with pytest.raises(DataError, match="standard input: line 2 is not UTF-8"):
        list(bad)


def test_write_jsonl_replaces_a_file_only_once_complete(tmp_path):
    from sentitune.data import write_jsonl

    out = tmp_path / "rows.jsonl.gz"
    write_jsonl([{"text": "ok"}], out)
    with pytest.raises(TypeError):
        write_jsonl([{"text": "fine"}, {"text": object()}], out)
    assert [json.loads(line) for line in gzip.open(out, "rt")] == [{"text": "ok"}]
