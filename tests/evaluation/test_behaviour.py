"""Behaviour tests on real models: generation, train/eval disjointness, failure rules, user files, report."""

import json
import re
import subprocess
import sys

import pytest

import sentitune
from sentitune.data import sample_path
from sentitune.data.augment import TRAIN_TEMPLATES, Case, augment_rows, load_templates
from sentitune.errors import DataError
from sentitune.evaluation.behaviour import (
    DIR_TOLERANCE,
    EVAL_TEMPLATES,
    BehaviourTest,
    build_suite,
    load_user_tests,
    run_behaviour,
)
from sentitune.evaluation.report import run_evaluation

CAPABILITIES = {"vocabulary", "negation", "contrast", "temporal", "questions", "opinion", "robustness", "entities",
                "fairness"}


@pytest.fixture(scope="module")
def default_model():
    return sentitune.load()


def texts_of(tests):
    return [t for test in tests for c in test.cases for t in [c.text, *c.variants]]


def test_suite_is_reproducible_for_a_seed_and_covers_every_capability():
    first, again, other = build_suite(0), build_suite(0), build_suite(1)
    assert texts_of(first) == texts_of(again)
    assert texts_of(first) != texts_of(other)
    assert CAPABILITIES <= {t.capability for t in first}
    assert {t.kind for t in first} == {"mft", "inv", "dir"}
    fairness = {t.name for t in first if t.capability == "fairness"}
    assert {f"fairness_{g}" for g in ("gender", "race", "religion", "nationality", "sexual_orientation",
                                      "disability", "age")} == fairness
    assert all(len(t.cases) >= 60 for t in first) and sum(len(t.cases) for t in first) >= 3000
    for test in first:  # every inv/dir case has something to compare with; every mft case a label
        assert all(c.variants for c in test.cases) if test.kind != "mft" else all(c.label in (0, 1) for c in test.cases)
    negated = next(t for t in first if t.name == "negation_of_positive")
    assert all(c.label == 0 and re.search(r"\b(not|never)\b|n't", c.text) for c in negated.cases)


def _words_and_templates(spec):
    words = {w for values in spec["lexicon"].values() for w in values}
    groups = [t.get("templates", {}) for t in spec["tests"]] + list(spec.get("bases", {}).values())
    templates = {tpl for g in groups for tpls in (g.values() if isinstance(g, dict) else [g]) for tpl in tpls}
    return words, templates


def _single_words(words):
    return {w.lower() for w in words if " " not in w}


def _template_words(templates):
    return {w.lower() for t in templates for w in re.findall(r"[A-Za-z][A-Za-z'-]*", re.sub(r"\{[^}]*\}", " ", t))}


def _identity_words(spec):
    return [w for key, values in spec["lexicon"].items() if key.startswith("identity_") for w in values]


def test_train_and_eval_halves_share_no_fill_word_no_template_and_no_text(sample_train):
    eval_words, eval_templates = _words_and_templates(load_templates(EVAL_TEMPLATES))
    train_spec = load_templates(TRAIN_TEMPLATES)
    train_words, train_templates = _words_and_templates(train_spec)
    train_words |= set(train_spec["gender_swaps"]) | set(train_spec["gender_swaps"].values())
    assert len(eval_words) > 150 and len(train_words) > 150
    assert not {w.lower() for w in eval_words} & {w.lower() for w in train_words}
    assert len(eval_templates) > 50 and not eval_templates & train_templates
    assert not _single_words(eval_words) & _template_words(train_templates)  # no EVAL word even as fixed text
    assert not _single_words(train_words) & _template_words(eval_templates)
    parts = {p.lower() for w in _identity_words(train_spec) for p in re.split(r"[-\s]", w)}
    assert not {w.lower() for w in _identity_words(load_templates(EVAL_TEMPLATES))} & parts  # no "old" in "eighty-year-old"
    # end to end: no text the suite evaluates is ever produced by `data augment`
    augmented, _ = augment_rows(sample_train, ratio=2.0, seed=0)
    assert not set(texts_of(build_suite(0))) & {r["text"] for r in augmented}


def test_each_kind_of_test_scores_failures_from_real_model_output(default_model):
    mft = BehaviourTest("qa", "questions", "mft", "", [
        # the default model says POSITIVE (P(pos) 0.996) today: sarcasm is beyond it
        Case("Yeah, right, best service ever.", label=0),
        Case("The hotel is wonderful.", label=1),
        Case("The hotel is dreadful.", label=0),
    ])
    inv = BehaviourTest("typos", "robustness", "inv", "", [
        Case("The hotel is wonderful.", ["The hotel is wodnerful.", "The htoel is wonderful."]),
        Case("I love the pool.", ["I love the pool!!"]),
    ])
    dir_ = BehaviourTest("more", "vocabulary", "dir", "", [
        Case("The hotel is fine.", ["The hotel is fine. Never again.", "The hotel is fine. Avoid it."]),
        Case("The hotel is awful.", ["The hotel is awful. Highly recommended."]),
    ], direction="down")
    results = run_behaviour(default_model, tests=[mft, inv, dir_])
    texts = list(dict.fromkeys(texts_of([mft, inv, dir_])))
    p = dict(zip(texts, default_model.predict_proba(texts)[:, 1]))
    by_name = {r["name"]: r for r in results["tests"]}

    expected_mft = [(p[c.text] > 0.5) != bool(c.label) for c in mft.cases]
    assert expected_mft[0], "the default model answers this case correctly now: pick another known failure"
    assert by_name["qa"]["failed"] == sum(expected_mft)
    worst = by_name["qa"]["examples"][0]
    assert (worst["expected"], worst["predicted"]) == ("NEGATIVE", "POSITIVE") and "best service" in worst["text"]
    expected_inv = [any((p[v] > 0.5) != (p[c.text] > 0.5) for v in c.variants) for c in inv.cases]
    assert by_name["typos"]["failed"] == sum(expected_inv)
    expected_dir = [max(p[v] for v in c.variants) > p[c.text] + DIR_TOLERANCE for c in dir_.cases]
    assert by_name["more"]["failed"] == sum(expected_dir)
    rates = [r["failure_rate"] for r in results["tests"]]
    assert results["mean_failure_rate"] == pytest.approx(sum(rates) / 3)
    assert by_name["qa"]["failure_rate"] == pytest.approx(sum(expected_mft) / 3)


def test_a_directional_test_fails_only_beyond_the_tolerance(default_model):
    text, worse, same = "The room was fine.", "The room was fine. What a waste of money.", "The room was fine!"
    p0, p_worse, p_same = default_model.predict_proba([text, worse, same])[:, 1]
    assert p_worse < p0 - DIR_TOLERANCE and abs(p_same - p0) < DIR_TOLERANCE  # what the default model does today
    tests = [BehaviourTest(f"{d}-{name}", "vocabulary", "dir", "", [Case(text, [variant])], direction=d)
             for d in ("up", "down") for name, variant in (("worse", worse), ("same", same))]
    failed = {r["name"]: r["failed"] for r in run_behaviour(default_model, tests=tests)["tests"]}
    assert failed == {"up-worse": 1, "down-worse": 0, "up-same": 0, "down-same": 0}


USER_JSONL = "\n".join(json.dumps(r) for r in [
    {"test": "sarcasm", "kind": "mft", "text": "Great, it broke on day one.", "label": "NEGATIVE"},
    {"test": "sarcasm", "kind": "mft", "text": "Oh wonderful, another delay.", "label": 0},
    {"test": "brands", "kind": "inv", "text": "My Acme phone is great.", "variants": ["My Zenith phone is great."],
     "capability": "entities"},
    {"test": "praise", "kind": "dir", "text": "It works.", "variants": ["It works. Love it!"], "direction": "up"},
]) + "\n"
USER_YAML = """cases:
  - {test: sarcasm, kind: mft, text: "Great, it broke on day one.", label: NEGATIVE}
  - {test: sarcasm, kind: mft, text: "Oh wonderful, another delay.", label: 0}
  - {test: brands, kind: inv, text: "My Acme phone is great.", variants: ["My Zenith phone is great."], capability: entities}
  - {test: praise, kind: dir, text: "It works.", variants: ["It works. Love it!"], direction: up}
"""


def test_user_tests_load_the_same_from_jsonl_and_yaml(tmp_path):
    (tmp_path / "mine.jsonl").write_text(USER_JSONL)
    (tmp_path / "mine.yaml").write_text(USER_YAML)
    (tmp_path / "mine.json").write_text(json.dumps([json.loads(line) for line in USER_JSONL.splitlines()]))
    a, b = load_user_tests(tmp_path / "mine.jsonl"), load_user_tests(tmp_path / "mine.yaml")
    assert a == b == load_user_tests(tmp_path / "mine.json")
    assert [(t.name, t.kind, len(t.cases)) for t in a] == [("sarcasm", "mft", 2), ("brands", "inv", 1), ("praise", "dir", 1)]
    assert [c.label for c in a[0].cases] == [0, 0] and a[1].capability == "entities" and a[2].direction == "up"


@pytest.mark.parametrize("name, content, fragment", [
    ("t.jsonl", '{"test": "x", "kind": "mft", "text": "ok"\n', "line 1 is not valid JSON"),
    ("t.jsonl", '{"test": "x", "kind": "mfx", "text": "ok", "label": 1}\n', "case 1: 'kind' must be mft, inv or dir"),
    ("t.jsonl", '{"test": "x", "kind": "mft", "text": "ok", "label": "meh"}\n', "'label' must be POSITIVE or NEGATIVE"),
    ("t.jsonl", '{"test": "x", "kind": "inv", "text": "ok"}\n', "'variants' must be a non-empty list"),
    ("t.jsonl", '{"test": "x", "kind": "dir", "text": "ok", "variants": ["ok!"]}\n', "'direction' must be up or down"),
    ("t.jsonl", '{"kind": "mft", "text": "ok", "label": 1}\n', "'test' (the test's name) is missing"),
    ("t.jsonl", '{"test": "x", "kind": "mft", "text": " ", "label": 1}\n', "'text' must be a non-empty string"),
    ("t.jsonl", '{"test": "x", "kind": "mft", "text": "a", "label": 1}\n{"test": "x", "kind": "inv", "text": "b", '
                '"variants": ["c"]}\n', "case 2: test 'x' mixes kinds"),
    ("t.yaml", "cases: [unclosed\n", "not valid YAML"),
    ("t.yaml", "cases: 3\n", "expected a list of cases"),
    ("t.jsonl", "\n", "has no behaviour cases"),
    ("t.csv", "test,kind\n", "must be .jsonl or .yaml/.yml"),
])
def test_a_bad_user_file_is_one_line_naming_the_problem(tmp_path, name, content, fragment):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError) as err:
        load_user_tests(tmp_path / name)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_evaluate_with_behaviour_adds_a_report_section(tmp_path, tfidf_model_dir):
    (tmp_path / "mine.yaml").write_text(USER_YAML)
    result = run_evaluation(tfidf_model_dir, sample_path("test"), tmp_path / "r", behaviour=True,
                            behaviour_file=tmp_path / "mine.yaml")
    saved = json.loads((tmp_path / "r" / "behaviour.json").read_text())
    assert saved["mean_failure_rate"] == pytest.approx(result["behaviour"]["mean_failure_rate"])
    assert {"sarcasm", "brands", "praise", "negation_expectation_denied"} <= {t["name"] for t in saved["tests"]}
    html = (tmp_path / "r" / "report.html").read_text()
    assert "<h2>Behaviour tests</h2>" in html and "negation_expectation_denied" in html
    assert (tmp_path / "r" / "metrics.json").exists()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "sentitune", *map(str, args)], check=False, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_cli_behaviour_on_the_default_model(tmp_path):
    (tmp_path / "mine.jsonl").write_text(USER_JSONL)
    proc = run_cli("evaluate", "--behaviour", "--behaviour-file", tmp_path / "mine.jsonl", "--report-dir", tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
    assert "mean failure rate" in proc.stdout and "negation_neutral_in_between" in proc.stdout
    results = json.loads((tmp_path / "b" / "behaviour.json").read_text())
    by_name = {t["name"]: t for t in results["tests"]}
    assert len(by_name) == len(build_suite(0)) + 3 and results["cases"] > 3000
    # the default model fails some of the 3,000+ cases (typos, identity swaps): the file, the rates, the
    # examples and the printed mean agree
    assert sum(t["failed"] for t in results["tests"]) > 0
    assert all(t["failure_rate"] == pytest.approx(t["failed"] / t["cases"]) for t in results["tests"])
    assert f"{results['mean_failure_rate']:.1%}" in proc.stdout
    assert all(len(t["examples"]) == min(3, t["failed"]) for t in results["tests"])
    assert "<h2>Behaviour tests</h2>" in (tmp_path / "b" / "report.html").read_text()


def test_cli_bad_behaviour_file_is_one_line_error(tmp_path, tfidf_model_dir):
    (tmp_path / "bad.jsonl").write_text('{"test": "x", "kind": "mft", "text": "ok"}\n')
    proc = run_cli("evaluate", "--model-path", tfidf_model_dir, "--behaviour-file", tmp_path / "bad.jsonl",
                   "--report-dir", tmp_path / "r")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "case 1: 'label' must be POSITIVE or NEGATIVE" in lines[0], proc.stderr
