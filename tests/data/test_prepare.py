from collections import Counter

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentitune.data import CleanOptions, PrepareOptions, load_labelled, prepare
from sentitune.data.prepare import clean_text, detect_label_format, map_labels, sample_even_by_source
from sentitune.errors import DataError


@pytest.mark.parametrize(
    "values, fmt, expected",
    [
        (["POSITIVE", "negative", "pos", "Neg"], "names", [1, 0, 1, 0]),
        (["1", "0"], "binary", [1, 0]),
        ([0, 4, 4], "sentiment140", [0, 1, 1]),
        ([1, 2, 3, 4, 5], "stars", [0, 0, 0, 1, 1]),
    ],
)
def test_label_formats_are_detected_and_mapped(values, fmt, expected):
    series = pd.Series(values)
    assert detect_label_format(series) == fmt
    assert map_labels(series, "auto", PrepareOptions()).tolist() == expected


def test_three_stars_can_be_dropped(tmp_path):
    pd.DataFrame({"review": ["meh it was fine I guess", "loved it so much", "hated it a lot"], "stars": [3, 5, 1]}).to_csv(
        tmp_path / "r.csv", index=False
    )
    rows, drops = load_labelled(tmp_path / "r.csv", PrepareOptions(drop_neutral_stars=True))
    assert [r["label"] for r in rows] == [1, 0]
    assert drops["neutral label"] == 1


def test_unknown_label_names_the_row():
    with pytest.raises(DataError, match="unknown label values"):
        map_labels(pd.Series(["positive", "meh"]), "auto", PrepareOptions())
    with pytest.raises(DataError, match="row 2: unknown label"):
        map_labels(pd.Series(["1", "7"]), "binary", PrepareOptions())


def test_cleaning_removes_urls_mentions_html():
    opts = CleanOptions()
    got = clean_text("@bob Great   film!<br /><br />See http://x.co/abc &amp; more", opts)
    assert got == "Great film! See & more"
    assert clean_text("Mixed CASE", CleanOptions(lowercase=True)) == "mixed case"


def test_pipeline_dedups_balances_and_splits_reproducibly(tmp_path):
    texts = [f"review number {i} is {'great' if i % 3 else 'awful'}" for i in range(300)]
    df = pd.DataFrame({"text": texts + [t.upper() + "!!" for t in texts[:20]], "label": [int(i % 3 > 0) for i in range(320)]})
    df.to_csv(tmp_path / "d.csv", index=False)
    splits, summary = prepare([tmp_path / "d.csv"], PrepareOptions(seed=7))
    assert summary["dropped"]["duplicate"] == 20  # normalised duplicates (case, punctuation)
    counts = Counter(r["label"] for s in splits.values() for r in s)
    assert counts[0] == counts[1] == 100  # balanced down to the minority class
    assert [len(splits[k]) for k in ("train", "val", "test")] == [160, 20, 20]
    again, _ = prepare([tmp_path / "d.csv"], PrepareOptions(seed=7))
    assert again == splits
    row = splits["train"][0]
    assert set(row) >= {"text", "label", "sentiment", "source", "confidence", "length", "dataset_source"}
    all_texts = [r["text"] for s in splits.values() for r in s]
    assert len(all_texts) == len(set(all_texts))


def test_missing_text_column_is_named(tmp_path):
    pd.DataFrame({"body_text": ["x"], "label": [1]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="no text column found"):
        prepare([tmp_path / "d.csv"])


def test_a_soft_label_column_is_kept_for_training(tmp_path):
    """`data augment`'s neutral identity groups carry a soft target; `sentitune train` must see it."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "Our landlord is a pilot.", "label": 1, "soft_label": 0.62}\n'
                    '{"text": "A truly dreadful film.", "label": 0, "soft_label": null}\n')
    rows, _ = load_labelled(path, clean=False)
    assert rows[0]["soft_label"] == 0.62 and "soft_label" not in rows[1]


@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=6), n=st.integers(0, 200), seed=st.integers(0, 9))
def test_an_even_sample_over_sources_is_as_even_as_the_sources_allow(sizes, n, seed):
    rows = [{"text": f"{s}-{i}", "source": f"s{s}"} for s, size in enumerate(sizes) for i in range(size)]
    picked = sample_even_by_source(rows, n, seed)
    assert len(picked) == min(n, len(rows)) and len({r["text"] for r in picked}) == len(picked)
    taken = Counter(r["source"] for r in picked)
    for s, size in enumerate(sizes):
        # a source gets fewer rows than another only when it has no more to give
        if size and taken[f"s{s}"] < max(taken.values(), default=0) - 1:
            assert taken[f"s{s}"] == size
    assert picked == sample_even_by_source(rows, n, seed)  # seeded
