"""Which writing system a text is written in: what the ``router`` method dispatches on.

Words are counted per Unicode script. Chinese and Japanese have no spaces and a word is about
two characters, so each Han or kana character counts half a word; in every other script a run of
letters is a word: "这个iPhone太好用了" is Chinese, "I watched 让子弹飞 yesterday" is English. Kana
make a text Japanese even beside many Han characters (kanji), since Chinese is never written with
kana.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

import regex

# One alternative per script; named groups tell which matched. Single characters for Han and kana,
# whole runs (words, with their combining marks) for the rest; "other" catches any script not listed.
_UNITS = regex.compile(
    r"(?P<Han>\p{Han})|(?P<Kana>[\p{Hiragana}\p{Katakana}\u30fc])|(?P<Hangul>\p{Hangul}+)"
    r"|(?P<Latin>\p{Latin}+)|(?P<Cyrillic>\p{Cyrillic}+)|(?P<Greek>\p{Greek}+)|(?P<Arabic>\p{Arabic}+)"
    r"|(?P<Hebrew>\p{Hebrew}+)|(?P<Devanagari>\p{Devanagari}+)|(?P<Thai>\p{Thai}+)|(?P<other>\p{L}[\p{L}\p{M}]*)"
)
# Kana share of the CJK characters above which a text is Japanese: Chinese Weibo posts borrow a の
# now and then, Japanese sentences are mostly kana.
JAPANESE_KANA_SHARE = 0.2
CJK_CHARS_PER_WORD = 2

# script -> language code a router route is named by
LANGUAGES = {"Han": "zh", "Japanese": "ja", "Hangul": "ko", "Latin": "en"}
NAMES = {
    "Han": "Chinese (Han characters)",
    "Japanese": "Japanese (kana)",
    "Hangul": "Korean (Hangul)",
    "Latin": "Latin script",
    "Cyrillic": "Cyrillic script (e.g. Russian, Ukrainian)",
    "Greek": "Greek",
    "Arabic": "Arabic script (e.g. Arabic, Persian, Urdu)",
    "Hebrew": "Hebrew",
    "Devanagari": "Devanagari script (e.g. Hindi, Marathi)",
    "Thai": "Thai",
}


def script_units(text: str) -> Counter:
    """Words per script (a Han or kana character is half a word)."""
    if text.isascii():  # the common case, ten times faster than the regex
        return Counter(Latin=len(text.split())) if any(c.isalpha() for c in text) else Counter()
    units: Counter = Counter()
    for m in _UNITS.finditer(text):
        name = m.lastgroup
        if name == "other":  # name it after the Unicode character name: "BENGALI LETTER A" -> Bengali
            name = unicodedata.name(m.group()[0], "unknown").split(" ")[0].title()
        units[name] += 1
    kana = units.pop("Kana", 0)
    if kana and kana >= JAPANESE_KANA_SHARE * (kana + units["Han"]):
        units["Japanese"] = kana + units.pop("Han", 0)
    for cjk in ("Han", "Japanese"):
        if units[cjk]:
            units[cjk] /= CJK_CHARS_PER_WORD
    return +units


def dominant_script(text: str) -> str | None:
    """The script most of ``text``'s letters are in ("Han", "Latin", "Japanese", "Cyrillic" ...),
    or None when it has no letters (emoji, numbers). Ties go to the non-Latin script: a short mixed
    text is usually in that language with an English word or name in it."""
    units = script_units(text)
    if not units:
        return None
    return max(units, key=lambda s: (units[s], s != "Latin"))


def script_name(script: str) -> str:
    """Human-readable name for warnings: "Japanese (kana)", "Cyrillic script (e.g. Russian, ...)"."""
    return NAMES.get(script, f"{script} script")
