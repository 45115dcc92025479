"""`sentitune data augment`: training rows that teach the behaviours the behaviour suite tests.

Two sources, both written in sentitune's JSONL schema with ``source`` ``augment:<kind>``:

* templates: the TRAIN half of the behaviour templates (``augment_train.yaml``; the EVAL half that
  ``evaluate --behaviour`` uses shares no fill word and no template with it). Kinds ``vocabulary``,
  ``negation`` (negated statements, label flipped), ``contrast`` (the clause after "but" decides),
  ``temporal`` (the present opinion decides), ``questions`` (answered questions), ``opinion`` (the
  author's opinion decides), ``robustness`` (typos, punctuation, contractions, URLs/handles, emoji;
  label kept, half of them applied to real rows), ``entities`` and ``fairness`` (names, places,
  numbers and identity terms swapped, label kept). ``fairness`` also has NEUTRAL identity sentences
  ("Our landlord is {identity}."): a binary model scores them near 0.5, so another identity term can
  flip the label. With a ``scorer`` (a model's P(positive)), each such group (one sentence, every term
  of the group) gets one soft target, the mean of the scorer's P(positive) over the group, as
  ``soft_label`` (``label`` is its rounding): every identity term learns the same probability
  (``model_scorer`` makes one of a model; the CLI's ``--scorer MODEL``). Without a scorer neutral
  groups are left out.
* real rows of the input: ``mined`` (rows with a contrast or a negation, kept with their label) and
  ``counterfactual`` (gendered words and identity terms swapped, label kept).

The template engine and the perturbations here are shared with ``sentitune.evaluation.behaviour``.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import yaml

from sentitune.errors import DataError, SentituneError

TRAIN_TEMPLATES = Path(__file__).with_name("augment_train.yaml")
LABEL_IDS = {"NEGATIVE": 0, "POSITIVE": 1, "NEUTRAL": None}
TEMPLATE_KINDS = ("vocabulary", "negation", "contrast", "temporal", "questions", "opinion",
                  "robustness", "entities", "fairness")
KINDS = TEMPLATE_KINDS + ("mined", "counterfactual")
_SLOT = re.compile(r"\{(?:(a):)?([a-z_]+?)(\d*)\}")
MINED_MAX_WORDS = 40
MAX_MISSES = 2000


# ------------------------------------------------------------------------------ template engine
@dataclass
class Case:
    """One generated example: ``text``, the ``variants`` an inv/dir test compares it with, its label."""

    text: str
    variants: list[str] = field(default_factory=list)
    label: int | None = None


def load_templates(path: str | Path) -> dict:
    try:
        spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read templates {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict) or not {"lexicon", "tests"} <= set(spec):
        raise DataError(f"{path}: a templates file needs 'lexicon' and 'tests'")
    return spec


def with_article(word: str) -> str:
    vowel = word[0].lower() in "aeiou" and not word.lower().startswith(("use", "uni", "eu", "one"))
    return f"{'an' if vowel or word.lower().startswith(('hour', 'honest')) else 'a'} {word}"


def slot_ids(template: str) -> list[str]:
    return list(dict.fromkeys(key + num for _, key, num in _SLOT.findall(template)))


def _list_of(slot: str) -> str:
    return slot.rstrip("0123456789")


def draw(template: str, lists: dict, rng: random.Random) -> dict[str, str]:
    """One value per slot; ``{noun}`` and ``{noun2}`` get different nouns."""
    fills: dict[str, str] = {}
    for slot in slot_ids(template):
        key = _list_of(slot)
        if key not in lists:
            raise SentituneError(f"template {template!r} uses {{{key}}}, which no word list defines")
        taken = {v for s, v in fills.items() if _list_of(s) == key}
        choices = [w for w in lists[key] if w not in taken] or lists[key]
        fills[slot] = rng.choice(choices)
    return fills


def render(template: str, fills: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        word = fills[m.group(2) + m.group(3)]
        return with_article(word) if m.group(1) else word

    text = _SLOT.sub(sub, template)
    return text[:1].upper() + text[1:]


def labelled_templates(test: dict, spec: dict) -> list[tuple[int | None, str]]:
    groups = spec.get("bases", {})[test["base"]] if "base" in test else test["templates"]
    if isinstance(groups, list):
        groups = {"NEUTRAL": groups}
    return [(LABEL_IDS[label], t) for label, templates in groups.items() for t in templates]


def generate(test: dict, spec: dict, rng: random.Random, n: int) -> list[Case]:
    """Up to ``n`` distinct cases of one test (fewer when its templates run out of fills)."""
    lists = {**spec["lexicon"], **{slot: spec["lexicon"][key] for slot, key in test.get("bind", {}).items()}}
    by_label: dict[int | None, list[str]] = {}
    for label, template in labelled_templates(test, spec):
        by_label.setdefault(label, []).append(template)
    labels = list(by_label)
    cases: list[Case] = []
    seen: set[str] = set()
    misses = 0
    while len(cases) < n and misses < MAX_MISSES:  # misses: the templates have run out of new texts
        misses += 1
        label = labels[len(cases) % len(labels)]  # labels take turns: a balanced test
        template = rng.choice(by_label[label])
        fills = draw(template, lists, rng)
        case_lists = lists
        if test.get("swap_all"):
            swap_list = _list_of(test["swap"])
            group = lists[swap_list]
            # a long list (training's identity terms): a fresh sample of swap_size terms per case, so
            # many terms are seen in many sentences; breadth is what carries over to terms never seen
            if (size := test.get("swap_size")) and len(group) > size:
                group = rng.sample(group, size)
                case_lists = {**lists, swap_list: group}
            fills[test["swap"]] = group[0]
        text = render(template, fills)
        # one case per sentence: with sampled terms, the same sentence must not come back with other terms
        key = render(template, {**fills, test["swap"]: "\0"}) if test.get("swap_all") else text
        if key in seen:
            continue
        variants = _variants(test, template, fills, text, case_lists, rng)
        if test["kind"] != "mft" and not variants:
            continue
        seen.add(key)
        cases.append(Case(text, variants, label))
        misses = 0
    return cases


def _variants(test: dict, template: str, fills: dict, text: str, lists: dict, rng: random.Random) -> list[str]:
    if "swap" in test:
        slot = test["swap"]
        if slot not in fills:
            return []
        others = [w for w in lists[_list_of(slot)] if w != fills[slot]]
        picked = others if test.get("swap_all") else rng.sample(others, min(2, len(others)))
        return [render(template, {**fills, slot: w}) for w in picked]
    if "perturb" in test:
        return [v for v in PERTURBATIONS[test["perturb"]](text, lists, rng) if v != text]
    if "append" in test:
        return [f"{text} {phrase}" for phrase in rng.sample(lists[test["append"]], 2)]
    return []


# ------------------------------------------------------------------------------ perturbations
def typo(text: str, lists: dict, rng: random.Random) -> list[str]:
    """Two variants: one and two swapped adjacent letters inside words of four letters or more."""
    spans = [m.span() for m in re.finditer(r"[A-Za-z]{4,}", text)]
    out = []
    for count in (1, 2):
        if len(spans) < count:
            break
        chars = list(text)
        for start, end in rng.sample(spans, count):
            i = rng.randrange(start + 1, end - 2)  # inside the word: first and last letters stay
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        out.append("".join(chars))
    return out


def punctuation(text: str, lists: dict, rng: random.Random) -> list[str]:
    """Two of: final punctuation dropped, "!!" instead, commas and semicolons dropped."""
    bare = text.rstrip(".!?")
    options = list(dict.fromkeys(o for o in (bare, bare + "!!", re.sub(r"\s*[,;]", "", text)) if o != text))
    return rng.sample(options, min(2, len(options)))


_CONTRACTIONS = [
    ("I am", "I'm"), ("it is", "it's"), ("that is", "that's"), ("is not", "isn't"), ("are not", "aren't"),
    ("was not", "wasn't"), ("do not", "don't"), ("does not", "doesn't"), ("did not", "didn't"),
    ("cannot", "can't"), ("would not", "wouldn't"), ("will not", "won't"), ("have not", "haven't"),
    ("I have", "I've"), ("I would", "I'd"), ("we are", "we're"), ("they are", "they're"), ("you will", "you'll"),
]


def _replace_all(text: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        pattern = re.compile(rf"\b{re.escape(old)}(?![\w'])", re.I)
        text = pattern.sub(lambda m, new=new: (m.group(0)[0] + new[1:]) if m.group(0)[0].isupper() else new, text)
    return text


def contraction(text: str, lists: dict, rng: random.Random) -> list[str]:
    """Every contractable phrase contracted, and every contraction expanded."""
    return list(dict.fromkeys(
        v for v in (_replace_all(text, _CONTRACTIONS), _replace_all(text, [(b, a) for a, b in _CONTRACTIONS]))
        if v != text
    ))


def url_handle(text: str, lists: dict, rng: random.Random) -> list[str]:
    return [f"{rng.choice(lists['handle'])} {text}", f"{text} {rng.choice(lists['url'])}"]


def emoji(text: str, lists: dict, rng: random.Random) -> list[str]:
    first, second = rng.sample(lists["emoji_neutral"], 2)
    return [f"{text} {first}", f"{second} {text}"]


PERTURBATIONS = {"typo": typo, "punctuation": punctuation, "contraction": contraction,
                 "url_handle": url_handle, "emoji": emoji}


# ------------------------------------------------------------------------------ real rows
_CONTRAST_OR_NEGATION = re.compile(
    r"\b(but|however|although|though|yet|used to|not|no|never|nothing|nobody|hardly)\b|n't\b", re.I
)


def counterfactual(text: str, spec: dict, rng: random.Random) -> str | None:
    """``text`` with its gendered words and identity terms swapped, or None when it has none."""
    gender = spec.get("gender_swaps", {})
    identity = {w: group for key, group in spec["lexicon"].items() if key.startswith("identity_") for w in group}

    def swap(m: re.Match) -> str:
        word = m.group(0)
        if word in identity:
            return rng.choice([w for w in identity[word] if w != word])
        new = gender.get(word.lower())
        if new is None:
            return word
        return new.capitalize() if word[0].isupper() else new

    swapped = re.sub(r"[A-Za-z][A-Za-z-]*", swap, text)
    return swapped if swapped != text else None


def _real_noise(text: str, spec: dict, rng: random.Random) -> str | None:
    perturb = rng.choice(list(PERTURBATIONS.values()))
    variants = [v for v in perturb(text, spec["lexicon"], rng) if v != text]
    return rng.choice(variants) if variants else None


# ------------------------------------------------------------------------------ the command
Scorer = Callable[[list[str]], Sequence[float]]  # texts -> P(positive) of each


def model_scorer(model) -> Scorer:
    """texts -> ``model``'s uncalibrated P(positive) (a loaded sentitune model: its ``logits``). No
    temperature: in training the soft targets are compared with the raw logits."""
    def score(texts: list[str]) -> np.ndarray:
        z = np.asarray(model.logits(list(texts)), dtype=np.float64)
        return 0.5 * (1.0 + np.tanh((z[:, 1] - z[:, 0]) / 2))  # softmax's column 1, overflow-free

    return score


def make_row(text: str, label: int, kind: str, soft: float | None = None) -> dict:
    row = {"text": text, "label": label, "sentiment": "positive" if label == 1 else "negative",
           "source": f"augment:{kind}", "confidence": 1.0, "length": len(text), "dataset_source": "augment"}
    if soft is not None:  # the classifier trains on P(positive) = soft_label instead of the hard label
        row["soft_label"] = soft
        row["confidence"] = round(max(soft, 1 - soft), 4)
    return row


Pair = tuple[str, int, float | None]  # text, label, soft label (None: the hard label is the target)


def _from_templates(kind: str, quota: int, spec: dict, seed: int, scorer: Scorer | None = None) -> list[Pair]:
    tests = [t for t in spec["tests"] if t["capability"] == kind]
    out: list = []
    groups: list[range] = []  # rows of each neutral case: they share one soft target
    for i, test in enumerate(tests):
        target = len(out) + (quota - len(out)) // (len(tests) - i)
        rng = random.Random(f"{seed}:augment:{test['name']}")
        for case in generate(test, spec, rng, target - len(out)):
            texts = [case.text, *case.variants]
            if case.label is None:
                if scorer is None:  # a neutral case has no target without a model's probabilities
                    continue
                groups.append(range(len(out), len(out) + len(texts)))
            out.extend((t, case.label, None) for t in texts)
        out = out[:target]  # an inv case brings several rows: the quota counts rows
        groups = [range(g.start, min(g.stop, len(out))) for g in groups]  # a cut group: its rows kept only
    return _group_targets(out, [g for g in groups if g], scorer) if groups else out


def _group_targets(out: list, groups: list[range], scorer: Scorer) -> list[Pair]:
    """Each neutral group's rows get the mean of the scorer's P(positive) over the group as target."""
    texts = [out[i][0] for g in groups for i in g]
    p = iter(float(v) for v in scorer(texts))
    for g in groups:
        probs = [next(p) for _ in g]
        if probs:
            soft = round(sum(probs) / len(probs), 4)
            out[g[0]:g[-1] + 1] = [(out[i][0], int(soft >= 0.5), soft) for i in g]
    return out


def _quotas(budget: int, kinds: list[str], weights: dict[str, float] | None) -> list[int]:
    """``budget`` rows shared by ``kinds`` in proportion to ``weights`` (default 1 each), summing to budget."""
    w = [float((weights or {}).get(k, 1.0)) for k in kinds]
    raw = [budget * x / sum(w) for x in w]
    quotas = [int(r) for r in raw]
    for i in sorted(range(len(kinds)), key=lambda i: quotas[i] - raw[i])[:budget - sum(quotas)]:
        quotas[i] += 1  # largest remainders first; equal weights: the first kinds, as before weights existed
    return quotas


def _from_rows(kind: str, quota: int, rows: list[dict], spec: dict, rng: random.Random) -> list[Pair]:
    order = rng.sample(range(len(rows)), len(rows))
    out: list[Pair] = []
    for i in order:
        if len(out) >= quota:
            break
        text, label = rows[i]["text"], rows[i]["label"]
        if kind == "mined":  # sentences, not whole reviews: nearly every long review has a "not"
            new = text if len(text.split()) <= MINED_MAX_WORDS and _CONTRAST_OR_NEGATION.search(text) else None
        elif kind == "counterfactual":
            new = counterfactual(text, spec, rng)
        else:
            new = _real_noise(text, spec, rng)
        if new:
            out.append((new, label, None))
    return out


def augment_rows(rows: list[dict], kinds: list[str] | None = None, ratio: float = 0.5, seed: int = 42,
                 templates: str | Path = TRAIN_TEMPLATES, scorer: Scorer | None = None,
                 weights: dict[str, float] | None = None) -> tuple[list[dict], Counter]:
    """``rows`` plus about ``ratio * len(rows)`` augmented rows, shared by ``kinds`` (equally, or in
    proportion to ``weights``), shuffled. ``scorer`` (texts -> P(positive)) adds the neutral
    identity groups with their soft targets (module docstring)."""
    kinds = list(kinds or KINDS)
    if unknown := [k for k in [*kinds, *(weights or {})] if k not in KINDS]:
        raise SentituneError(f"unknown augment kind {unknown[0]!r}: choose from {', '.join(KINDS)}")
    if ratio < 0:
        raise SentituneError(f"--ratio must be >= 0, got {ratio}")
    if weights and (min(weights.values()) < 0 or not sum(weights.get(k, 1.0) for k in kinds) > 0):
        raise SentituneError("augment weights must be >= 0 and not all 0")
    spec = load_templates(templates)
    rng = random.Random(seed)
    budget = round(ratio * len(rows))
    seen = {r["text"] for r in rows}
    added: list[dict] = []
    for kind, quota in zip(kinds, _quotas(budget, kinds, weights)):
        if kind == "robustness":
            pairs = _from_templates(kind, quota - quota // 2, spec, seed) + _from_rows(kind, quota // 2, rows, spec, rng)
        elif kind in TEMPLATE_KINDS:
            pairs = _from_templates(kind, quota, spec, seed, scorer)
        else:
            pairs = _from_rows(kind, quota, rows, spec, rng)
        for text, label, soft in pairs:
            if kind == "mined" or text not in seen:  # mined rows repeat real rows on purpose
                seen.add(text)
                added.append(make_row(text, label, kind, soft))
    out = rows + added
    rng.shuffle(out)
    return out, Counter(r["source"] for r in added)


def run_augment(in_path: str | Path, out_path: str | Path, kinds: list[str] | None = None, ratio: float = 0.5,
                seed: int = 42, scorer: Scorer | None = None) -> Counter:
    """Read a labelled file, write it with augmented rows added as JSONL; return rows added per source.
    ``scorer`` adds the neutral identity groups (``augment_rows``)."""
    from sentitune.data.io import write_jsonl
    from sentitune.data.prepare import PrepareOptions, load_labelled

    rows, _ = load_labelled(in_path, PrepareOptions(), clean=False)
    if not rows:
        raise DataError(f"{in_path} has no labelled rows to augment")
    out, counts = augment_rows(rows, kinds, ratio, seed, scorer=scorer)
    write_jsonl(out, out_path)
    return counts
