"""scripts/demo_summary.py, the last step of `make demo`, on a demo directory holding a tfidf model."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from sentitune.data import sample_path
from sentitune.data.io import read_jsonl, write_jsonl
from sentitune.evaluation.report import run_evaluation

ROOT = Path(__file__).resolve().parents[1]


def summary_script():
    spec = importlib.util.spec_from_file_location("demo_summary", ROOT / "scripts" / "demo_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo(tmp_path, tfidf_model_dir):
    (tmp_path / "data").mkdir()
    write_jsonl(read_jsonl(sample_path("test"))[:80], tmp_path / "data" / "test.jsonl")
    shutil.copytree(tfidf_model_dir, tmp_path / "model")
    return tmp_path


def test_without_the_trained_models_report_it_says_what_to_run(demo, capsys):
    assert summary_script().main([str(demo)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "report/metrics.json not found" in err and "\n" not in err


@pytest.mark.slow
def test_table_puts_the_trained_model_beside_the_default(demo, capsys):
    run_evaluation(demo / "model", demo / "data" / "test.jsonl", demo / "report")
    script = summary_script()
    # the accurate preset's row is built the same way, at 2 minutes of mpnet on a CPU: tests/test_presets.py has it
    script.PRESETS = {name: path for name, path in script.PRESETS.items() if name != "accurate"}
    assert script.main([str(demo)]) == 0
    out = capsys.readouterr().out
    rows = json.loads((demo / "summary.json").read_text())
    assert [r["model"] for r in rows][:2] == [f"trained ({demo / 'model'})", "preset default"]
    trained_metrics = json.loads((demo / "report" / "metrics.json").read_text())
    assert rows[0]["accuracy"] == trained_metrics["accuracy"]
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["behaviour_failure_rate"] <= 1 and r["texts_per_s"] > 0
        assert Path(r["report"]).is_file() and r["report"] in out
    # the shipped model is better than tfidf on 2,824 sample rows at the behaviour suite
    assert rows[1]["behaviour_failure_rate"] < rows[0]["behaviour_failure_rate"]
    assert (demo / "report-default" / "behaviour.json").is_file()
