"""`data augment` on the bundled sample: label-correct rows, input rows kept, reproducible, trains directly."""

import json
import random
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from sentitune.data import read_jsonl, sample_path
from sentitune.data.augment import (
    KINDS,
    TRAIN_TEMPLATES,
    augment_rows,
    contraction,
    counterfactual,
    generate,
    load_templates,
    typo,
)
from sentitune.errors import SentituneError
from conftest import assert_one_line_error

SPEC = load_templates(TRAIN_TEMPLATES)
LEX = SPEC["lexicon"]


def words(text):
    return set(re.findall(r"[a-z-]+", text.lower()))


def polarity(text):
    """+1 / -1 from the TRAIN lexicon's sentiment words in text (templates hold words of one polarity)."""
    w = words(text)
    pos = w & set(LEX["pos_adj"] + LEX["pos_verb"])
    neg = w & set(LEX["neg_adj"] + LEX["neg_verb"])
    assert bool(pos) != bool(neg), text
    return 1 if pos else -1


@pytest.fixture(scope="module")
def augmented(sample_train):
    return augment_rows(sample_train, ratio=0.5, seed=3)


def test_input_rows_are_kept_and_every_kind_adds_rows(sample_train, augmented):
    rows, counts = augmented
    assert Counter((r["text"], r["label"]) for r in sample_train) <= Counter((r["text"], r["label"]) for r in rows)
    assert len(rows) == len(sample_train) + sum(counts.values())
    assert set(counts) == {f"augment:{k}" for k in KINDS}
    assert sum(counts.values()) == pytest.approx(0.5 * len(sample_train), abs=len(KINDS))
    added = [r for r in rows if r["source"].startswith("augment:")]
    assert all(r["label"] in (0, 1) and r["sentiment"] == ("positive" if r["label"] else "negative")
               and r["length"] == len(r["text"]) for r in added)


def test_negation_flips_the_label_of_the_sentiment_word(augmented):
    negated = [r for r in augmented[0] if r["source"] == "augment:negation"]
    assert len(negated) > 100 and {r["label"] for r in negated} == {0, 1}
    for r in negated:
        assert re.search(r"\b(not|hardly|nothing|never|nobody)\b|n't", r["text"], re.I), r["text"]
        assert r["label"] == (polarity(r["text"]) < 0), r["text"]  # "not great" is NEGATIVE, "not awful" POSITIVE


def test_contrast_temporal_and_template_swaps_keep_the_deciding_label(augmented):
    rows = augmented[0]
    for r in (r for r in rows if r["source"] == "augment:contrast"):
        deciding = re.split(r", but |, however |, yet |; still, |Even so, |, (?=(?:the|our) )", r["text"])[-1]
        assert r["label"] == (polarity(deciding) > 0), r["text"]
    fairness = [r for r in rows if r["source"] == "augment:fairness"]
    identity = {w.lower() for k, v in LEX.items() if k.startswith("identity_") for w in v}
    groups: dict[str, set] = {}
    for r in fairness:  # the same sentence with another identity term has the same label
        key = " ".join("<id>" if w.lower().strip(",.") in identity else w for w in r["text"].split())
        groups.setdefault(key.replace("an <id>", "a <id>"), set()).add(r["label"])
    assert len(groups) > 10 and all(len(labels) == 1 for labels in groups.values())
    assert all(r["label"] == (polarity(r["text"]) > 0) for r in fairness)


def test_counterfactual_swaps_of_real_rows_keep_the_label():
    rows = [{"text": "My husband loved this phone and he uses it daily.", "label": 1},
            {"text": "She hated the hotel and her sister agreed.", "label": 0},
            {"text": "The Buddhist temple tour was dull.", "label": 0},
            {"text": "Nothing to swap in this one.", "label": 1}]
    out, _ = augment_rows(rows, kinds=["counterfactual"], ratio=1.0, seed=0)
    added = {r["text"]: r["label"] for r in out if r.get("source") == "augment:counterfactual"}
    assert added.pop("My wife loved this phone and she uses it daily.") == 1
    assert added.pop("He hated the hotel and his brother agreed.") == 0
    (swapped, label), = added.items()
    others = "|".join(w for w in LEX["identity_religion"] if w != "Buddhist")
    assert label == 0 and re.fullmatch(rf"The ({others}) temple tour was dull\.", swapped)
    assert counterfactual("Nothing to swap in this one.", SPEC, random.Random(0)) is None


def identity_key(text):
    """The sentence with its identity term masked: the counterfactual group it belongs to."""
    identity = {w.lower() for k, v in LEX.items() if k.startswith("identity_") for w in v}
    key = " ".join("<id>" if w.lower().strip(",.") in identity else w for w in text.split())
    return re.sub(r"\b[Aa]n? <id>", "a <id>", key)


def identity_group(text):
    """(masked sentence, identity category): one neutral group is one sentence with the terms of one category."""
    found = {w.lower().strip(",."): k for k, v in LEX.items() if k.startswith("identity_") for w in v}
    categories = {found[w.lower().strip(",.")] for w in text.split() if w.lower().strip(",.") in found}
    return identity_key(text), tuple(sorted(categories))


def test_long_identity_lists_are_sampled_per_case_without_repeating_a_sentence():
    test = next(t for t in SPEC["tests"] if t["name"] == "fairness_nationality")
    terms, size = set(LEX["identity_nationality"]), test["swap_size"]
    assert len(terms) > 3 * size
    used, sentences = set(), set()
    for case in generate(test, SPEC, random.Random(0), 80):
        found = [w.strip(".,") for t in [case.text, *case.variants] for w in t.split() if w.strip(".,") in terms]
        assert len(found) == len(set(found)) == size  # one term per row, swap_size different ones
        used.update(found)
        assert identity_key(case.text) not in sentences  # another case of the same sentence would get another target
        sentences.add(identity_key(case.text))
    assert len(used) > 0.9 * len(terms)  # the cases between them cover (nearly) the whole list


def test_neutral_identity_groups_share_one_soft_target_from_the_scorer(sample_train, tfidf_model_dir):
    import sentitune

    model = sentitune.load(tfidf_model_dir)
    scored: list[str] = []

    def scorer(texts):
        scored.extend(texts)
        return model.predict_proba(texts)[:, 1]

    rows, counts = augment_rows(sample_train[:400], kinds=["fairness", "negation"], ratio=1.0, seed=2,
                                scorer=scorer, weights={"fairness": 3})
    assert counts["augment:fairness"] == pytest.approx(3 * counts["augment:negation"], abs=3)
    soft = [r for r in rows if "soft_label" in r]
    assert soft and {r["source"] for r in soft} == {"augment:fairness"} and set(scored) >= {r["text"] for r in soft}
    groups: dict[str, list[dict]] = {}
    for r in soft:
        groups.setdefault(identity_group(r["text"]), []).append(r)
    assert len(groups) > 10 and all(len(g) > 1 for g in groups.values())
    p = dict(zip(scored, scorer(scored)))
    for g in groups.values():  # one target per group: the scorer's mean over its identity variants
        assert len({r["soft_label"] for r in g}) == 1
        assert g[0]["soft_label"] == pytest.approx(np.mean([p[r["text"]] for r in g]), abs=1e-4)
        assert all(r["label"] == (r["soft_label"] >= 0.5) for r in g)
    labelled = [r for r in rows if r["source"] == "augment:fairness" and "soft_label" not in r]
    assert labelled and all(r["label"] == (polarity(r["text"]) > 0) for r in labelled)
    plain, _ = augment_rows(sample_train[:400], kinds=["fairness"], ratio=1.0, seed=2)  # no scorer: no neutral rows
    assert not any("soft_label" in r for r in plain)


def test_cli_scorer_gives_each_neutral_identity_group_one_soft_target(cli, tfidf_model_dir, tmp_path):
    import sentitune

    out = tmp_path / "train.jsonl"
    result = cli("data", "augment", sample_path("train"), "--out", out, "--kinds", "fairness", "--ratio", "0.3",
                 "--scorer", tfidf_model_dir)
    assert result.exit_code == 0, result.stderr
    groups: dict[str, list[dict]] = {}
    for r in read_jsonl(out):
        if "soft_label" in r:
            groups.setdefault(identity_group(r["text"]), []).append(r)
    assert sum(len(g) > 1 for g in groups.values()) > 10  # the quota may cut one group short
    model = sentitune.load(tfidf_model_dir)
    assert model.temperature == 1.0  # uncalibrated: predict_proba is the P(positive) the targets are made of
    for g in groups.values():
        assert len({r["soft_label"] for r in g}) == 1 and {r["source"] for r in g} == {"augment:fairness"}
        p = model.predict_proba([r["text"] for r in g])[:, 1]
        assert g[0]["soft_label"] == pytest.approx(p.mean(), abs=1e-4)
    assert_one_line_error(cli("data", "augment", sample_path("train"), "--out", out, "--scorer", tmp_path / "nope"),
                          "model directory not found")


def test_mined_rows_are_real_rows_with_contrast_or_negation(sample_train, augmented):
    labels = {r["text"]: r["label"] for r in sample_train}
    mined = [r for r in augmented[0] if r["source"] == "augment:mined"]
    assert mined and all(labels[r["text"]] == r["label"] and len(r["text"].split()) <= 40 for r in mined)
    assert all(re.search(r"\b(but|however|although|though|yet|used to|not|no|never|nothing|nobody|hardly)\b|n't",
                         r["text"], re.I) for r in mined)


def test_noise_keeps_words_readable():
    rng = random.Random(1)
    one, two = typo("The battery lasts forever", LEX, rng)
    assert sorted(one) == sorted("The battery lasts forever") and one != "The battery lasts forever"
    assert sum(a != b for a, b in zip(two, "The battery lasts forever")) == 4
    assert contraction("I am sure it is not broken.", LEX, rng) == ["I'm sure it's not broken."]
    assert contraction("It's great, I don't mind.", LEX, rng) == ["It is great, I do not mind."]


def test_augment_is_reproducible_and_bad_options_fail(sample_train):
    a, _ = augment_rows(sample_train[:300], ratio=0.3, seed=5)
    b, _ = augment_rows(sample_train[:300], ratio=0.3, seed=5)
    c, _ = augment_rows(sample_train[:300], ratio=0.3, seed=6)
    assert a == b and a != c
    with pytest.raises(SentituneError, match="unknown augment kind 'negations'"):
        augment_rows(sample_train[:10], kinds=["negations"])
    with pytest.raises(SentituneError, match="--ratio must be >= 0"):
        augment_rows(sample_train[:10], ratio=-1)
    with pytest.raises(SentituneError, match="unknown augment kind 'fairnes'"):
        augment_rows(sample_train[:10], weights={"fairnes": 2})


def test_cli_augment_output_trains_directly(tmp_path):
    out = tmp_path / "train.jsonl"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "sentitune", *map(str, args)], check=False, capture_output=True,
                              text=True, timeout=600)

    proc = run("data", "augment", sample_path("train"), "--out", out, "--kinds", "negation,fairness,mined",
               "--ratio", "0.2", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert "augmented rows added" in proc.stdout and "negation" in proc.stdout
    rows = read_jsonl(out)
    assert {r["source"] for r in rows if r["source"].startswith("augment:")} == {
        "augment:negation", "augment:fairness", "augment:mined"}
    proc = run("train", "--method", "tfidf", "--train", out, "--output-dir", tmp_path / "model")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "model" / "sentitune.json").read_text())["method"] == "tfidf"
    bad = run("data", "augment", sample_path("train"), "--out", out, "--kinds", "nope")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: unknown augment kind 'nope': choose from {', '.join(KINDS)}"]
