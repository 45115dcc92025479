"""What a change to a shipped model did: before and after, per source, calibration and every behaviour test.

    python benchmarks/model_change.py --before DIR --after DIR [--work runs/default] [--name default-model-change] [--title 'Default model'] [--no-write]

Both models are scored on the held-out per-source test splits that scripts/train_default_model.py
writes (neither model trained on them; rebuilt if absent) and on the behaviour suite's EVAL half
(the augmentation that trains behaviours uses the disjoint TRAIN half), and on that suite's identity
tests restricted to neutral sentences, with either half's identity words. ECE is measured on the
English held-out mix. ``--before`` defaults to the shipped default model as committed (HEAD).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentitune  # noqa: E402
from benchmarks.results import markdown_table, write_section  # noqa: E402
from sentitune.data import read_jsonl  # noqa: E402
from sentitune.data.augment import TRAIN_TEMPLATES, load_templates  # noqa: E402
from sentitune.evaluation.behaviour import EVAL_TEMPLATES, BehaviourTest, build_suite, run_behaviour  # noqa: E402
from sentitune.evaluation.metrics import expected_calibration_error  # noqa: E402

SHORT = ("sst2/train", "rotten_tomatoes/train")
# Issue 14's behaviour bars: (what, which tests, the highest failure rate allowed; "mean": the mean's bar)
BARS = [("every identity-term (fairness) test", lambda t: t["capability"] == "fairness", 0.05),
        ("every negation test", lambda t: t["capability"] == "negation", 0.20),
        ("every test", lambda t: True, 0.30),
        ("mean over tests", None, 0.10)]


def bar_rows(before: dict, after: dict) -> list[list]:
    rows = []
    for what, which, limit in BARS:
        worst = []
        for res in (before, after):
            if which is None:
                worst.append((res["mean_failure_rate"], "mean"))
            else:
                worst.append(max((t["failure_rate"], t["name"]) for t in res["tests"] if which(t)))
        rows.append([what, f"<= {limit:.0%}"] + [f"{v:.1%} ({name})" for v, name in worst]
                    + ["yes" if worst[1][0] <= limit else "no"])
    return rows


def neutral_identity_tests(words_from: Path) -> list[BehaviourTest]:
    """The suite's fairness tests on its NEUTRAL identity sentences only ("My neighbour is {identity}.":
    no opinion, so a binary model sits near 0.5 and a term can flip it), with the identity words of
    ``words_from``: the EVAL half's (which training never uses) or the TRAIN half's (which it does: not
    a measure of generalisation, but what the augmentation itself achieved)."""
    spec = load_templates(EVAL_TEMPLATES)
    spec["bases"]["identity"] = {"NEUTRAL": spec["bases"]["identity"]["NEUTRAL"]}
    spec["lexicon"].update({k: v for k, v in load_templates(words_from)["lexicon"].items() if k.startswith("identity_")})
    # as many terms per case as the EVAL half has (3-8), not all 90-odd of the TRAIN half's nationalities
    spec["tests"] = [{**t, "swap_size": 8} for t in spec["tests"] if t["capability"] == "fairness"]
    return build_suite(0, spec)


def per_source(proba: np.ndarray, rows: list[dict]) -> dict[str, tuple[int, float]]:
    hits: dict[str, list[bool]] = {}
    for row, p in zip(rows, proba.argmax(axis=1)):
        ok = int(p) == row["label"]
        groups = [row["source"], "all English sources" if not row["source"].startswith("weibo") else None,
                  "SST-2-style short sentences" if row["source"] in SHORT else None]
        for g in filter(None, groups):
            hits.setdefault(g, []).append(ok)
    return {g: (len(v), float(np.mean(v))) for g, v in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, default=None, help="default: the shipped default model")
    ap.add_argument("--after", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("runs/default"))
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--name", default="default-model-change")
    ap.add_argument("--title", default="Default model", help="what changed, for the section heading")
    ap.add_argument("--no-write", action="store_true", help="print only: a candidate, not the shipped change")
    args = ap.parse_args()
    data = args.work / "data"
    if not (data / "test.jsonl").exists():
        from scripts.train_default_model import build_data

        build_data(args.shared, data)
    test = read_jsonl(data / "test.jsonl")
    english = [r for r in test if not r["source"].startswith("weibo")]
    tests = build_suite(0)
    neutral = {half: neutral_identity_tests(path) for half, path in (("eval", EVAL_TEMPLATES), ("train", TRAIN_TEMPLATES))}

    scores = {}
    for tag, path in (("before", args.before), ("after", args.after)):
        model = sentitune.load(path)
        proba = model.predict_proba([r["text"] for r in test])
        eng = np.array([not r["source"].startswith("weibo") for r in test])
        scores[tag] = {
            "acc": per_source(proba, test),
            "ece": expected_calibration_error(np.array([r["label"] for r in english]), proba[eng]),
            "behaviour": run_behaviour(model, seed=0, tests=tests),
            **{f"neutral-{half}": run_behaviour(model, seed=0, tests=t) for half, t in neutral.items()},
        }
        print(tag, scores[tag]["acc"]["all English sources"], f"ECE {scores[tag]['ece']:.4f}",
              f"behaviour {scores[tag]['behaviour']['mean_failure_rate']:.1%}")

    b, a = scores["before"], scores["after"]
    acc_rows = [[g, n, b["acc"][g][1], a["acc"][g][1], f"{100 * (a['acc'][g][1] - b['acc'][g][1]):+.1f}"]
                for g, (n, _) in sorted(a["acc"].items(), key=lambda kv: (kv[0][0].isupper(), kv[0]))]
    acc_rows.append(["ECE, English held-out mix (10 bins)", len(english), b["ece"], a["ece"], f"{100 * (a['ece'] - b['ece']):+.1f}"])
    beh_rows = [[t0["capability"], t0["name"], t0["kind"], f"{t0['failure_rate']:.1%}", f"{t1['failure_rate']:.1%}",
                 f"{100 * (t1['failure_rate'] - t0['failure_rate']):+.1f}"]
                for t0, t1 in zip(b["behaviour"]["tests"], a["behaviour"]["tests"])]
    mb, ma = b["behaviour"]["mean_failure_rate"], a["behaviour"]["mean_failure_rate"]
    beh_rows.append(["all", "mean", "", f"{mb:.1%}", f"{ma:.1%}", f"{100 * (ma - mb):+.1f}"])
    neutral_rows = [[t0["name"], half_name, t0["cases"], f"{t0['failure_rate']:.1%}",
                     f"{t1['failure_rate']:.1%}", f"{100 * (t1['failure_rate'] - t0['failure_rate']):+.1f}"]
                    for half, half_name in (("eval", "EVAL half's"), ("train", "TRAIN half's"))
                    for t0, t1 in zip(b[f"neutral-{half}"]["tests"], a[f"neutral-{half}"]["tests"])]
    body = (
        f"before: `{args.before or 'shipped default (HEAD)'}`, after: `{args.after}`. Held-out per-source test splits of "
        "scripts/train_default_model.py (seed 42; neither model trained on them).\n\n"
        + markdown_table(["held-out split", "rows", "before", "after", "points"], acc_rows)
        + "\n\nBehaviour suite, EVAL half (seed 0), failure rate per test:\n\n"
        + markdown_table(["capability", "test", "kind", "before", "after", "points"], beh_rows)
        + "\n\nIdentity swaps in NEUTRAL sentences only (the suite's neutral identity templates; a case fails "
        "when the terms of a group do not all get one label):\n\n"
        + markdown_table(["test", "identity words", "cases", "before", "after", "points"], neutral_rows)
        + "\n\nIssue 14's bars (the worst test of each group):\n\n"
        + markdown_table(["bar", "limit", "before", "after", "after meets it"], bar_rows(b["behaviour"], a["behaviour"]))
    )
    print(body)
    if args.no_write:
        return
    write_section(args.name, f"{args.title}: what the change did, per source and per behaviour test (issues 14, 15)", body)


if __name__ == "__main__":
    main()
