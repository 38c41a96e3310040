"""Query analysis for recall, without a language model: what kind of answer a query wants.

Recall ranks by meaning (MiniLM) and by words (BM25). Both miss two things that conversational
memory questions carry (measured on LoCoMo, ``bench/locomo_ablation.py``):

* **When-questions** ("When did Caroline go to the support group?", "How long ago ...") are
  answered by a memory that *dates* the event, almost always with a relative expression
  ("... yesterday", "last Friday", "two weekends ago"). :func:`has_time_expression` spots those.
* **Calendar mentions** in the query ("camping in June", "in August 2023", "during the summer")
  name when the event happened; memories whose ``event_time`` falls in that period are the likely
  answers. :func:`analyze_query` turns them into UTC windows.
* **Names** of people in the query ("What did *Caroline* research?") are usually the speaker of
  the answering memory in a chat log stored as ``"Caroline: ..."``. :func:`speaker_of` reads
  that prefix.

Everything here is pure, deterministic string work: a few regular expressions per query.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["QueryAnalysis", "analyze_query", "has_time_expression", "speaker_of"]

# Recall asks has_time_expression of the same candidates again and again: cached for short
# texts only, so the cache stays a few MB whatever the memories hold.
_CACHED_TEXT_CHARS = 1000
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS.pop("may", None)  # "may" is also a verb: only the full-word pattern below matches it
_MONTH_WORDS = sorted({*_MONTHS, "may"}, key=len, reverse=True)
_SEASONS = {"spring": (3, 5), "summer": (6, 8), "autumn": (9, 11), "fall": (9, 11)}

_WHEN = re.compile(
    r"^\s*(?:when\b|what\s+(?:date|day|time|year|month)\b|which\s+(?:year|month|day|date)\b|"
    r"how\s+long\b|how\s+many\s+(?:days|weeks|months|years)\b|in\s+what\s+year\b)",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")
_MONTH_IN_QUERY = re.compile(
    r"\b(?:in|during|of|on|since|around|by)\s+(?:early\s+|late\s+|mid-?\s*)?("
    + "|".join(_MONTH_WORDS)
    + r")\b\.?(?:\s*,?\s*(19[5-9]\d|20\d\d))?",
    re.IGNORECASE,
)
_SEASON_IN_QUERY = re.compile(
    r"\b(?:in|during)\s+(?:the\s+)?(spring|summer|autumn|fall)\b(?:\s+(?:of\s+)?(19[5-9]\d|20\d\d))?",
    re.IGNORECASE,
)

_WEEKDAYS = r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?s?"
_TIME_EXPRESSION = re.compile(
    r"\b(?:yesterday|today|tonight|tomorrow|recently|lately|ago|"
    r"(?:last|next|this|past|previous|coming|upcoming)\s+(?:few\s+|couple\s+(?:of\s+)?)?"
    r"(?:week|weekend|month|year|night|morning|evening|afternoon|summer|winter|spring|fall|"
    r"autumn|time|days|weeks|months|years|weekends|" + _WEEKDAYS + r")|"
    r"(?:a|one|two|three|four|five|six|few|couple\s+of|several)\s+"
    r"(?:days|weeks|weekends|months|years|day|week|weekend|month|year)\s+(?:ago|back)|"
    r"since\s+(?:last|\d)|(?:on|last|this|next)\s+" + _WEEKDAYS + r"|"
    r"(?:19[5-9]\d|20\d\d)|"
    r"(?:" + "|".join(_MONTH_WORDS) + r")\s+\d{1,2}(?:st|nd|rd|th)?\b|"
    r"\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:" + "|".join(_MONTH_WORDS) + r"))\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b([A-Z][a-z]+(?:['’]s)?)\b")
_SPEAKER = re.compile(r"^\s*([A-Z][\w .'-]{0,39}?)\s*:\s")
# Capitalised words that start questions or are common sentence words, never names.
_NOT_NAMES = frozenset(
    """
    what when where which who whom whose why how would could should did does do is are was were
    has have had can will may might in on at for from to of the a an and or but if according
    around since during after before yes no please tell give list name describe explain i
    monday tuesday wednesday thursday friday saturday sunday spring summer autumn fall winter
    """.split()
).union(_MONTHS)


@dataclass(frozen=True)
class QueryAnalysis:
    """What the query asks for, beyond its words.

    ``asks_when``: the answer is a time ("when", "how long", "what year"). ``windows``: UTC
    ``[start, end)`` Unix-second periods the query names (a month, a season, a year). ``names``:
    lower-cased capitalised words that may be people ("caroline").
    """

    asks_when: bool = False
    windows: tuple[tuple[int, int], ...] = ()
    names: frozenset[str] = frozenset()

    def in_window(self, when: int) -> bool:
        """Whether ``when`` (Unix seconds) falls in one of the named periods."""
        return any(start <= when < end for start, end in self.windows)


def _month_span(year: int, first: int, last: int) -> tuple[int, int]:
    start = datetime(year, first, 1, tzinfo=UTC)
    end = datetime(year + (last == 12), last % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def _years_for(
    explicit: str | None, years: list[int], reference_years: Callable[[], range]
) -> list[int]:
    if explicit is not None:
        return [int(explicit)]
    if years:
        return years
    return list(reference_years())


def analyze_query(
    query: str, reference_years: range | Callable[[], range] = range(0)
) -> QueryAnalysis:
    """Read the time intent, named periods and names of ``query``.

    A month or season with no year applies to every year in ``reference_years`` (the span of
    the agent's event times, or a function computing it: called only when needed), since
    "camping in June" means June of whichever year it was.
    """
    span = reference_years if callable(reference_years) else lambda: reference_years
    years_named = [int(y) for y in _YEAR.findall(query)]
    windows: list[tuple[int, int]] = []
    for match in _MONTH_IN_QUERY.finditer(query):
        word = match.group(1).lower()
        month = _MONTHS.get(word, 5)  # "may" is kept out of _MONTHS (the verb)
        for year in _years_for(match.group(2), years_named, span):
            windows.append(_month_span(year, month, month))
    for match in _SEASON_IN_QUERY.finditer(query):
        first, last = _SEASONS[match.group(1).lower()]
        for year in _years_for(match.group(2), years_named, span):
            windows.append(_month_span(year, first, last))
    if not windows:
        for year in years_named:
            windows.append(_month_span(year, 1, 12))
    names = frozenset(
        word.lower().removesuffix("'s").removesuffix("’s")
        for word in _NAME.findall(query)
        if word.lower().removesuffix("'s").removesuffix("’s") not in _NOT_NAMES
    )
    return QueryAnalysis(
        asks_when=_WHEN.search(query) is not None, windows=tuple(windows), names=names
    )


def has_time_expression(text: str) -> bool:
    """Whether ``text`` dates something: "yesterday", "last Friday", "two weeks ago", "2022"."""
    if len(text) > _CACHED_TEXT_CHARS:
        return _TIME_EXPRESSION.search(text) is not None
    return _has_time_expression_cached(text)


@functools.lru_cache(maxsize=4096)
def _has_time_expression_cached(text: str) -> bool:
    return _TIME_EXPRESSION.search(text) is not None


def speaker_of(text: str) -> str | None:
    """The lower-cased speaker of a chat-log line ``"Caroline: ..."``, or ``None``."""
    match = _SPEAKER.match(text)
    return None if match is None else match.group(1).strip().lower()
