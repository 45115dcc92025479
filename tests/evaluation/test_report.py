"""Evaluation end to end on real models: report files, suite, calibration, comparison, bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sentitune
from sentitune.errors import DataError
from sentitune.evaluation.calibration import fit_temperature
from sentitune.evaluation.compare import run_comparison
from sentitune.evaluation.metrics import classification_metrics
from sentitune.evaluation.report import run_evaluation, suite_rows
from sentitune.data import sample_path


def test_report_of_the_default_model_counts_every_row(tmp_path, sample_test):
    result = run_evaluation(None, sample_path("test"), tmp_path / "r")
    out = tmp_path / "r"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == len(sample_test) == len(pd.read_csv(out / "predictions.csv"))
    assert 0.7 < result["metrics"]["accuracy"] <= 1.0
    html = (out / "report.html").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) >= 7 and html.count("data:image/png;base64,") >= len(pngs)
    # per-source accuracy covers every source of the file
    assert {r["source"] for r in sample_test} <= set(metrics["accuracy_by_source"])


def test_suite_is_balanced_and_the_default_model_handles_most_of_it(tmp_path):
    rows = suite_rows()
    assert len(rows) == 100 and sum(r["label"] for r in rows) == 50
    assert len({r["category"] for r in rows}) == 11
    result = run_evaluation(None, None, tmp_path / "suite", suite=True)
    assert result["metrics"]["accuracy"] >= 0.7


def test_temperature_scaling_does_not_worsen_ece_on_held_out_data(tfidf_model_dir, sample_test):
    model = sentitune.load(tfidf_model_dir)
    half = len(sample_test) // 2
    val, test = sample_test[:half], sample_test[half:]
    val_logits = model.logits([r["text"] for r in val])
    t = fit_temperature(val_logits, np.array([r["label"] for r in val]))
    test_logits = model.logits([r["text"] for r in test])
    labels = np.array([r["label"] for r in test])
    soft = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)  # noqa: E731
    before = classification_metrics(labels, soft(test_logits))["ece"]
    after = classification_metrics(labels, soft(test_logits / t))["ece"]
    assert t != pytest.approx(1.0) and after <= before + 0.01


@pytest.mark.parametrize(
    "content, fragment",
    [
        ('{"text": "good stuff here"}\n', "label"),
        ('{"text": "good stuff here", "label": "maybe"}\n', "unknown label values"),
        ('{"text": "good stuff here", "label": 1}\n{"text": "   ", "label": 0}\n', "row 2"),
    ],
)
def test_bad_test_files_name_the_row(tmp_path, tfidf_model_dir, content, fragment):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    with pytest.raises(DataError, match=fragment):
        run_evaluation(tfidf_model_dir, bad, tmp_path / "r")


def test_compare_scores_each_model_as_its_own_evaluation_does(tmp_path, tfidf_model_dir, sample_test):
    lexicon = sentitune.methods.get_method("lexicon")().save(tmp_path / "vader")
    report = run_comparison([str(tfidf_model_dir), str(lexicon)], sample_path("test"), tmp_path / "cmp")
    table = json.loads((report.parent / "comparison.json").read_text())
    labels = np.array([r["label"] for r in sample_test])
    for path, name in ((tfidf_model_dir, tfidf_model_dir.name), (lexicon, "vader")):
        predicted = sentitune.load(path).predict_proba([r["text"] for r in sample_test]).argmax(1)
        assert table[name]["accuracy"] == pytest.approx((predicted == labels).mean())
    assert table["vader"]["method"] == "lexicon" and table[tfidf_model_dir.name]["method"] == "tfidf"
    assert table[tfidf_model_dir.name]["accuracy"] != table["vader"]["accuracy"]
    html = report.read_text()
    assert f"{table['vader']['accuracy']:.4f}" in html and html.count("data:image/png;base64,") >= 3


@pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
    reason="no Chromium here (apt-get install chromium)",
)
def test_report_renders_every_chart_in_headless_chromium(tmp_path, tfidf_model_dir, sample_test):
    run_evaluation(tfidf_model_dir, sample_path("test"), tmp_path / "report")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "scripts/check_report.py"), str(tmp_path / "report")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "charts rendered: 9/9" in proc.stdout and (tmp_path / "report/screenshot.png").stat().st_size > 10_000
