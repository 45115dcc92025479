"""Behaviour tests: what a model does with negation, contrast, questions, typos, names, identity terms.

``run_behaviour(model)`` generates sentitune's own suite (the EVAL half of the templates in
``behaviour_data/eval.yaml``, reproducibly from ``seed``), scores every text in one batch and returns
the failure rate of each test with its worst failing examples. Three kinds of test:

* ``mft`` (minimum functionality): each text has an expected label; a wrong label fails.
* ``inv`` (invariance): a change that should not matter (a typo, another name, another identity
  term); the case fails if any variant's label differs from the original's.
* ``dir`` (directional): a change that should move P(positive) one way (``direction`` up or down);
  the case fails if a variant moves it the other way by more than 0.1.

Users add their own tests with ``--behaviour-file F`` (``extra_file``): JSON Lines (``.jsonl``; a
``.json`` file may also hold one array), or YAML (``.yaml``/``.yml``: a list of the same records, or a
mapping with a ``cases`` list). One record per case; records with the same ``test`` form one test::

    {"test": "sarcasm", "kind": "mft", "text": "Great, it broke on day one.", "label": "NEGATIVE"}
    {"test": "brand names", "kind": "inv", "text": "My Acme phone is great.", "variants": ["My Zenith phone is great."]}
    {"test": "more praise", "kind": "dir", "text": "It works.", "variants": ["It works. Love it!"], "direction": "up"}

``label`` is POSITIVE/NEGATIVE (or 1/0); ``capability`` and ``description`` are optional.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from sentitune.data.augment import Case, generate, load_templates
from sentitune.errors import DataError

EVAL_TEMPLATES = Path(__file__).parent / "behaviour_data" / "eval.yaml"
CASES_PER_TEST = {"mft": 200, "inv": 150, "dir": 150}
CASES_SWAP_ALL = 60  # a fairness case holds every term of its group (3-8 texts): fewer cases, as many texts
DIR_TOLERANCE = 0.1
MAX_EXAMPLES = 3
KINDS = ("mft", "inv", "dir")
_LABELS = {"positive": 1, "negative": 0, "1": 1, "0": 0}


@dataclass
class BehaviourTest:
    name: str
    capability: str
    kind: str
    description: str
    cases: list[Case]
    direction: str | None = None  # dir tests: "up" or "down"


def build_suite(seed: int = 0, templates: str | Path | dict = EVAL_TEMPLATES) -> list[BehaviourTest]:
    """Every test of a templates file (or of a spec already loaded from one), its cases drawn
    reproducibly from ``seed``."""
    spec = templates if isinstance(templates, dict) else load_templates(templates)
    tests = []
    for t in spec["tests"]:
        n = CASES_SWAP_ALL if t.get("swap_all") else CASES_PER_TEST[t["kind"]]
        cases = generate(t, spec, random.Random(f"{seed}:{t['name']}"), n)
        tests.append(BehaviourTest(t["name"], t["capability"], t["kind"], t.get("description", ""), cases,
                                   t.get("direction")))
    return tests


# ------------------------------------------------------------------------------ users' files
def _records(path: Path) -> list:
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".json" and text.lstrip().startswith("["):  # a JSON array of the same records
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if suffix in (".jsonl", ".json"):
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {i} is not valid JSON ({exc.msg})") from None
        return out
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DataError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        data = data.get("cases") if isinstance(data, dict) else data
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a list of cases (or a mapping with a 'cases' list)")
        return data
    raise DataError(f"{path}: behaviour tests must be .jsonl or .yaml/.yml, got {path.name!r}")


def _case(rec, where: str) -> tuple[str, str, Case, str | None]:
    if not isinstance(rec, dict):
        raise DataError(f"{where}: a case must be a mapping with test, kind and text")
    name, kind, text = rec.get("test"), rec.get("kind"), rec.get("text")
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{where}: 'test' (the test's name) is missing")
    if kind not in KINDS:
        raise DataError(f"{where}: 'kind' must be mft, inv or dir, got {kind!r}")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: 'text' must be a non-empty string")
    if kind == "mft":
        label = _LABELS.get(str(rec.get("label")).lower())
        if label is None:
            raise DataError(f"{where}: 'label' must be POSITIVE or NEGATIVE, got {rec.get('label')!r}")
        return name, kind, Case(text, [], label), None
    variants = rec.get("variants")
    if not isinstance(variants, list) or not variants or not all(isinstance(v, str) and v.strip() for v in variants):
        raise DataError(f"{where}: 'variants' must be a non-empty list of non-empty strings")
    direction = rec.get("direction")
    if kind == "dir" and direction not in ("up", "down"):
        raise DataError(f"{where}: 'direction' must be up or down, got {direction!r}")
    return name, kind, Case(text, variants), direction


def load_user_tests(path: str | Path) -> list[BehaviourTest]:
    """Tests from a user's JSONL/YAML file (format in the module docstring); DataError naming a bad case."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"behaviour file not found: {path}")
    try:
        records = _records(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not records:
        raise DataError(f"{path} has no behaviour cases")
    tests: dict[str, BehaviourTest] = {}
    for i, rec in enumerate(records, 1):
        name, kind, case, direction = _case(rec, f"{path}: case {i}")
        test = tests.setdefault(name, BehaviourTest(
            name, str(rec.get("capability") or "custom"), kind, str(rec.get("description") or ""), [], direction))
        if (test.kind, test.direction) != (kind, direction):
            raise DataError(f"{path}: case {i}: test {name!r} mixes kinds or directions")
        test.cases.append(case)
    return list(tests.values())


# ------------------------------------------------------------------------------ scoring
def _judge(test: BehaviourTest, case: Case, p: dict[str, float]) -> tuple[bool, float, dict]:
    """(failed, severity, example) of one case; ``p`` maps each text to P(positive)."""
    p0 = p[case.text]
    if test.kind == "mft":
        wrong = (p0 > 0.5) != bool(case.label)
        return wrong, abs(p0 - 0.5), {"text": case.text, "expected": _name(case.label), "predicted": _name(p0 > 0.5),
                                      "p_positive": round(p0, 4)}
    if test.kind == "inv":
        flipped = [v for v in case.variants if (p[v] > 0.5) != (p0 > 0.5)]
        worst = max(flipped or case.variants, key=lambda v: abs(p[v] - p0))
    else:
        sign = 1 if test.direction == "up" else -1  # the move that is allowed
        worst = min(case.variants, key=lambda v: sign * (p[v] - p0))
        flipped = [worst] if sign * (p[worst] - p0) < -DIR_TOLERANCE else []
    example = {"text": case.text, "p_positive": round(p0, 4), "variant": worst, "variant_p_positive": round(p[worst], 4)}
    return bool(flipped), abs(p[worst] - p0), example


def _name(positive) -> str:
    return "POSITIVE" if positive else "NEGATIVE"


def score_test(test: BehaviourTest, p: dict[str, float], max_examples: int = MAX_EXAMPLES) -> dict:
    judged = [_judge(test, case, p) for case in test.cases]
    failures = sorted((j for j in judged if j[0]), key=lambda j: -j[1])
    return {
        "name": test.name, "capability": test.capability, "kind": test.kind, "description": test.description,
        "cases": len(judged), "failed": len(failures),
        "failure_rate": len(failures) / len(judged) if judged else 0.0,
        "examples": [j[2] for j in failures[:max_examples]],
    }


def run_behaviour(model, seed: int = 0, extra_file: str | Path | None = None,
                  tests: list[BehaviourTest] | None = None) -> dict:
    """Run the behaviour suite (plus a user's tests) on ``model``; failure rates, examples, their mean."""
    tests = list(tests if tests is not None else build_suite(seed))
    if extra_file is not None:
        tests += load_user_tests(extra_file)
    texts = list(dict.fromkeys(t for test in tests for c in test.cases for t in [c.text, *c.variants]))
    start = time.perf_counter()
    p_pos = model.predict_proba(texts)[:, 1] if texts else np.zeros(0)
    seconds = time.perf_counter() - start
    p = dict(zip(texts, p_pos.astype(float).tolist()))
    results = [score_test(t, p) for t in tests]
    by_capability: dict[str, list[float]] = {}
    for r in results:
        by_capability.setdefault(r["capability"], []).append(r["failure_rate"])
    return {
        "seed": seed, "tests": results, "texts": len(texts), "cases": sum(r["cases"] for r in results),
        "mean_failure_rate": float(np.mean([r["failure_rate"] for r in results])) if results else 0.0,
        "by_capability": {c: float(np.mean(v)) for c, v in by_capability.items()},
        "seconds": seconds,
    }


# ------------------------------------------------------------------------------ output
def _example_line(e: dict) -> str:
    if "expected" in e:
        return f"{e['text']}  (expected {e['expected']}, P(pos) {e['p_positive']:.2f})"
    return f"{e['text']}  (P(pos) {e['p_positive']:.2f}) -> {e['variant']}  (P(pos) {e['variant_p_positive']:.2f})"


def behaviour_html(results: dict) -> str:
    """The report's "Behaviour tests" section."""
    from sentitune.evaluation.report import html_table

    summary = (f"<p class='big'>mean failure rate <b>{results['mean_failure_rate']:.1%}</b> over "
               f"{len(results['tests'])} tests ({results['cases']:,} cases, {results['texts']:,} texts)</p>")
    rows = [[r["capability"], r["name"], r["kind"], r["cases"], f"{r['failure_rate']:.1%}",
             " | ".join(_example_line(e) for e in r["examples"]) or "-"] for r in results["tests"]]
    note = ("<p>mft: the expected label; inv: the label must not change; dir: P(positive) must not move the "
            f"wrong way by more than {DIR_TOLERANCE}. Examples are the worst failures.</p>")
    return summary + note + html_table(["capability", "test", "kind", "cases", "failure rate", "failing examples"], rows)


def behaviour_table(results: dict):
    """A rich table for the terminal: one row per test with its worst failing example."""
    from rich.table import Table

    table = Table(title=f"behaviour: mean failure rate {results['mean_failure_rate']:.1%} "
                        f"({results['cases']:,} cases, {results['seconds']:.1f} s)")
    for col in ("capability", "test", "kind", "cases", "failed"):
        table.add_column(col, justify="right" if col in ("cases", "failed") else "left")
    table.add_column("worst failure", overflow="fold")
    for r in results["tests"]:
        table.add_row(r["capability"], r["name"], r["kind"], str(r["cases"]), f"{r['failure_rate']:.1%}",
                      _example_line(r["examples"][0]) if r["examples"] else "-")
    return table


def write_behaviour_report(results: dict, out: Path, name: str) -> Path:
    """behaviour.json and a report.html holding only the behaviour section (``evaluate --behaviour`` alone)."""
    from sentitune.atomic import atomic_write
    from sentitune.evaluation.report import render_html

    with atomic_write(out / "behaviour.json") as fh:
        fh.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    path = out / "report.html"
    with atomic_write(path) as fh:
        fh.write(render_html(f"sentitune behaviour tests: {name}", [("Behaviour tests", behaviour_html(results))]))
    return path


def evaluate_behaviour(model_path=None, report_dir=None, extra_file=None, seed: int = 0) -> dict:
    """``sentitune evaluate --behaviour`` without a test file: the suite, behaviour.json and report.html."""
    from datetime import datetime

    import sentitune

    model = sentitune.load(model_path)
    results = run_behaviour(model, seed, extra_file)
    name = Path(model_path).name if model_path else "default model"
    out = Path(report_dir) if report_dir else Path("reports") / f"{name.replace(' ', '-')}-{datetime.now():%Y%m%d-%H%M%S}"
    write_behaviour_report(results, out, name)
    return {"behaviour": results, "report_dir": str(out)}
