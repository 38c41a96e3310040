"""Built-in entity extraction: rules and word lists, no model download (``builtin-rules``).

One text goes through two passes: e-mail addresses, URLs, dates (absolute and relative) and
product names by regular expression, each match masking its characters so the next pass never
sees them again; then names of people, organisations and places in runs of capitalised words
(``entity_names``), with the word lists of ``entity_lexicon``.

Each entity says which extractor produced it, its character span and a score in (0, 1) that
reflects how strong the evidence was (word list + context > word list > context only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dakera_server.engine.entities import lexicon as lex
from dakera_server.engine.entities.names import find_names

__all__ = [
    "BUILTIN_EXTRACTOR",
    "DEFAULT_ENTITY_TYPES",
    "ENTITY_TYPES",
    "Entity",
    "RuleExtractor",
    "normalize_entity_type",
    "normalize_entity_types",
]

BUILTIN_EXTRACTOR = "builtin-rules"
ENTITY_TYPES = ("person", "org", "location", "date", "url", "email", "product")
DEFAULT_ENTITY_TYPES = ENTITY_TYPES
TYPE_ALIASES = {
    "per": "person",
    "people": "person",
    "persons": "person",
    "name": "person",
    "organization": "org",
    "organisation": "org",
    "organizations": "org",
    "organisations": "org",
    "orgs": "org",
    "company": "org",
    "loc": "location",
    "locations": "location",
    "place": "location",
    "places": "location",
    "gpe": "location",
    "city": "location",
    "country": "location",
    "dates": "date",
    "time": "date",
    "datetime": "date",
    "link": "url",
    "website": "url",
    "uri": "url",
    "mail": "email",
    "e-mail": "email",
    "products": "product",
}


def normalize_entity_type(label: str) -> str | None:
    """``PERSON``/``organisation``/``gpe`` → ``person``/``org``/``location``; None if unknown."""
    value = label.strip().lower().replace(" ", "_")
    value = TYPE_ALIASES.get(value, value)
    return value if value in ENTITY_TYPES else None


def normalize_entity_types(labels: Iterable[str] | None) -> frozenset[str]:
    """The known types among ``labels``; none given (or none known) means every type."""
    known = {t for t in (normalize_entity_type(x) for x in labels or ()) if t is not None}
    return frozenset(known) if known else frozenset(DEFAULT_ENTITY_TYPES)


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity mention. ``normalized`` is the linking key ("" = not linkable, e.g. "today")."""

    entity_type: str
    value: str
    score: float
    extractor: str = BUILTIN_EXTRACTOR
    start: int = -1
    end: int = -1
    normalized: str = ""

    @property
    def key(self) -> str | None:
        """``type:normalized`` for linking memories that mention the same thing, or None."""
        return f"{self.entity_type}:{self.normalized}" if self.normalized else None

    def to_wire(self) -> dict[str, Any]:
        """The entity object of §3.12 (plus ``extractor`` and the character span)."""
        wire: dict[str, Any] = {
            "entity_type": self.entity_type,
            "value": self.value,
            "score": self.score,
            "extractor": self.extractor,
        }
        if self.start >= 0:
            wire["start"], wire["end"] = self.start, self.end
        return wire

    def to_payload(self) -> list[Any]:
        """Compact persisted form."""
        return [
            self.entity_type,
            self.value,
            self.score,
            self.extractor,
            self.start,
            self.end,
            self.normalized,
        ]

    @classmethod
    def from_payload(cls, data: list[Any]) -> Entity:
        """Rebuild from ``to_payload``."""
        kind, value, score, extractor, start, end, normalized = data
        return cls(kind, value, float(score), extractor, int(start), int(end), normalized)


# --------------------------------------------------------------------------- regex passes
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_NUMBER = {m.lower(): i + 1 for i, m in enumerate(_MONTHS)} | {
    m.lower()[:3]: i + 1 for i, m in enumerate(_MONTHS)
}
_MONTH_NUMBER["sept"] = 9
_FULL = "|".join(_MONTHS)
_MONTH = rf"(?:{_FULL}|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)"
_DAY = r"(?:3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[6-9]\d\d|20\d\d|21\d\d)"
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_NUMBER_WORD = (
    r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|a few|a couple of|several|\d+)"
)

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
# Each date pattern comes with what a text must contain for it to match at all ("digit", "month":
# a capitalised month name or abbreviation, "ago", "day": a weekday name, "wday": a weekday
# abbreviation); ``_hints`` finds those once per text, and a pattern whose needs are missing is
# not run: same matches, and most texts skip most patterns.
# Absolute dates: the groups hold month/day/year by name.
ABSOLUTE_DATES = (
    (
        re.compile(
            rf"\b(?:{_WEEKDAY},?\s+)?(?P<month>{_MONTH})\s+(?P<day>{_DAY})\b"
            rf"(?:,?\s+(?P<year>{_YEAR})\b)?"
        ),
        frozenset({"month", "digit"}),
    ),
    (
        re.compile(
            rf"\b(?P<day>{_DAY})\s+(?:of\s+)?(?P<month>{_MONTH})\b(?:,?\s+(?P<year>{_YEAR})\b)?"
        ),
        frozenset({"month", "digit"}),
    ),
    (re.compile(rf"\b(?P<month>{_FULL}),?\s+(?P<year>{_YEAR})\b"), frozenset({"month", "digit"})),
    (re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})\b"), frozenset({"digit"})),
    (re.compile(r"\b(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})\b"), frozenset({"digit"})),
)
# Dates whose span is one group of the match (the preposition only gives the context).
CONTEXT_DATES = (
    (
        re.compile(
            rf"\b(?i:in|since|by|until|till|during|from|before|after|around|circa)\s+"
            rf"(?P<year>{_YEAR})\b"
        ),
        frozenset({"digit"}),
    ),
    (
        re.compile(
            rf"\b(?i:in|since|until|till|by|during|early|late|mid|of|through)\s+"
            rf"(?P<month>{_FULL})\b"
        ),
        frozenset({"month"}),
    ),
)
_ANY: frozenset[str] = frozenset()
RELATIVE_DATES = (
    (re.compile(r"\b(?:yesterday|today|tomorrow|tonight)\b", re.IGNORECASE), _ANY),
    (
        re.compile(
            r"\b(?:last|next|this|past|coming)\s+(?:week|weekend|month|year|summer|winter|"
            r"spring|fall|autumn|night|morning|evening|afternoon)\b",
            re.IGNORECASE,
        ),
        _ANY,
    ),
    (re.compile(rf"\b(?:[Ll]ast|[Nn]ext|[Tt]his)\s+(?:{_FULL})\b"), frozenset({"month"})),
    (
        re.compile(rf"\b{_NUMBER_WORD}\s+(?:days?|weeks?|months?|years?|decades?)\s+ago\b"),
        frozenset({"ago"}),
    ),
    (re.compile(rf"\b(?:(?i:last|next|this|every)\s+)?{_WEEKDAY}s?\b"), frozenset({"day"})),
    (
        re.compile(r"\b(?i:last|next|this)\s+(?:Mon|Tues?|Wed|Thu(?:rs?)?|Fri|Sat|Sun)\b"),
        frozenset({"wday"}),
    ),
    (re.compile(r"\bthe\s+(?:19|20)\d0s\b"), frozenset({"digit"})),
)
_DIGIT = re.compile(r"\d")
_MONTH_HINT = re.compile(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")
_WEEKDAY_HINT = re.compile(r"Mon|Tue|Wed|Thu|Fri|Sat|Sun")


def _hints(masked: str) -> frozenset[str]:
    """Which of the date patterns' needs ``masked`` meets (see ``ABSOLUTE_DATES``)."""
    found = []
    if _DIGIT.search(masked):
        found.append("digit")
    if _MONTH_HINT.search(masked):
        found.append("month")
    if "ago" in masked:
        found.append("ago")
    if "day" in masked:
        found.append("day")
    if _WEEKDAY_HINT.search(masked):
        found.append("wday")
    return frozenset(found)


PRODUCT_VERSIONED = re.compile(
    r"\b(?!(?:COVID|Covid|SARS|MERS|H1N1)\b)[A-Z][A-Za-z]{1,15}-\d+(?:\.\d+)?[A-Za-z]{0,3}\b"
)
_DESIGNATION = (
    r"(?:\s+(?:\d{1,4}(?:\.\d)?[a-zA-Z]{0,2}|Pro|Max|Plus|Mini|Ultra|Air|SE|XL|XS|XR|Lite|"
    r"Series\s+[XS]|S\d{1,2}|[A-Z]\d{1,3}))*"
)
# A product name can only match where its first word is a word of the lower-cased text, so a
# text with none of these first words skips the big case-insensitive alternation (15 of the
# 90 us the extractor took per generated memory). Python's re also matches four non-ASCII
# letters to ASCII ones under IGNORECASE, and lower() does not turn all of them into those
# ("İphone" lower-cases to "i" + a combining dot + "phone"): a text with one of them always
# takes the regex, as does every text if a product ever starts with a non-word character.
_WORD_RUN = re.compile(r"\w+")
_ODD_CASE = frozenset("\u0130\u0131\u017f\u212a")
_PRODUCT_HEADS = frozenset(m.group() if (m := _WORD_RUN.match(p)) else "" for p in lex.PRODUCTS)
_PREFILTER_PRODUCTS = "" not in _PRODUCT_HEADS
PRODUCT_NAMES = re.compile(
    r"(?<![\w-])(?P<name>(?i:"
    + "|".join(re.escape(p) for p in sorted(lex.PRODUCTS, key=len, reverse=True))
    + rf"))(?P<model>{_DESIGNATION})(?![\w-])"
)


def _iso(year: str | None, month: str | None, day: str | None) -> str:
    """ISO form of a date with a year ("" without one: "March 14" recurs every year)."""
    if not year:
        return ""
    number = (month or "").lower().rstrip(".")
    month_no = int(number) if number.isdigit() else _MONTH_NUMBER.get(number, 0)
    if not 1 <= month_no <= 12:
        return year if not month else ""
    if not day:
        return f"{year}-{month_no:02d}"
    day_no = int(re.sub(r"\D", "", day))
    return f"{year}-{month_no:02d}-{day_no:02d}" if 1 <= day_no <= 31 else ""


class RuleExtractor:
    """The ``builtin-rules`` extractor: deterministic, thread-safe, stateless."""

    name = BUILTIN_EXTRACTOR

    def extract(self, text: str, entity_types: Iterable[str] | None = None) -> list[Entity]:
        """Entities of ``text`` of the wanted types, in text order, one per (type, value)."""
        wanted = normalize_entity_types(entity_types)
        found: list[Entity] = []
        mask = list(text)

        def take(kind: str, start: int, end: int, score: float, normalized: str) -> None:
            if any(c == "\x00" for c in mask[start:end]):
                return
            found.append(Entity(kind, text[start:end], score, self.name, start, end, normalized))
            mask[start:end] = "\x00" * (end - start)

        for match in EMAIL.finditer(text):
            take("email", match.start(), match.end(), 0.99, match.group().lower())
        for match in URL.finditer("".join(mask)):
            end = match.end()
            while end > match.start() and text[end - 1] in ".,;:!?)]}'\"":
                end -= 1
            take("url", match.start(), end, 0.99, text[match.start() : end].lower().rstrip("/"))
        self._dates("".join(mask), take)
        self._products("".join(mask), take)
        for name in find_names("".join(mask)):
            value = text[name.start : name.end]
            normalized = " ".join(value.lower().split())
            found.append(
                Entity(name.kind, value, name.score, self.name, name.start, name.end, normalized)
            )
        found.sort(key=lambda e: e.start)
        seen: set[tuple[str, str]] = set()
        unique = []
        for entity in found:
            ident = (entity.entity_type, entity.normalized or entity.value.lower())
            if entity.entity_type in wanted and ident not in seen:
                seen.add(ident)
                unique.append(entity)
        return unique

    # ----------------------------------------------------------------- regex passes
    @staticmethod
    def _dates(masked: str, take: Any) -> None:
        hints = _hints(masked)
        for pattern, needs in ABSOLUTE_DATES:
            if needs <= hints:
                for m in pattern.finditer(masked):
                    groups = m.groupdict()
                    iso = _iso(groups.get("year"), groups.get("month"), groups.get("day"))
                    take("date", m.start(), m.end(), 0.95, iso)
        for pattern, needs in CONTEXT_DATES:
            if needs <= hints:
                for m in pattern.finditer(masked):
                    name = "year" if "year" in pattern.groupindex else "month"
                    iso = m.group(name) if name == "year" else ""
                    take("date", m.start(name), m.end(name), 0.9, iso)
        for pattern, needs in RELATIVE_DATES:
            if needs <= hints:
                for m in pattern.finditer(masked):
                    take("date", m.start(), m.end(), 0.85, "")

    @staticmethod
    def _products(masked: str, take: Any) -> None:
        if (
            _PREFILTER_PRODUCTS
            and _ODD_CASE.isdisjoint(masked)
            and _PRODUCT_HEADS.isdisjoint(_WORD_RUN.findall(masked.lower()))
        ):
            names: Iterable[re.Match[str]] = ()
        else:
            names = PRODUCT_NAMES.finditer(masked)
        for m in names:
            name, model = m.group("name"), m.group("model").strip()
            if name.islower() or (name.lower() in lex.MODEL_BRANDS and not model):
                continue
            take("product", m.start(), m.end(), 0.9, m.group().lower())
        for m in PRODUCT_VERSIONED.finditer(masked):
            take("product", m.start(), m.end(), 0.85, m.group().lower())
