"""Names in running text: the capitalised-run pass of the built-in extractor (``extractor.py``).

Runs of capitalised words ("San Francisco", "Bank of America", "Hey Mel") are cut by longest
match against ``entity_lexicon``'s lists, then by prefix/suffix shapes ("Stanford University",
"Mount Fuji"), person titles ("Dr. Lopez") and first names (+ surname). What is left is kept only
with context: a place after "in"/"from"/"moved to", a person after "with"/"met" or before
"said". An unknown capitalised word that starts a sentence is never an entity ("Thanks",
"Good"): that rule is where rule-based extractors usually lose their precision. A person found
with a surname also names later bare mentions of either part ("Lopez said").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from dakera_server.engine.entities import lexicon as lex

__all__ = ["Mention", "find_names"]

WORD = re.compile(r"[A-Za-z0-9\u00c0-\u024f][A-Za-z0-9\u00c0-\u024f'’&.-]*")
INITIALISM = re.compile(r"(?:[A-Za-z]\.){2,}")
SENTENCE_BREAKS = frozenset('.!?:;\n"“”()[]*—-•>')
UNKNOWN_PERSON_AFTER = frozenset({"said", "says", "told", "asked"})


class Mention(NamedTuple):
    """A name found at ``text[start:end]``."""

    kind: str
    start: int
    end: int
    score: float


@dataclass
class _Token:
    text: str  # without a possessive 's
    start: int
    end: int
    possessive: bool
    lower: str = field(init=False)

    def __post_init__(self) -> None:
        self.lower = self.text.lower()

    @property
    def capitalised(self) -> bool:
        return self.text[:1].isupper()

    @property
    def all_caps(self) -> bool:
        letters = [c for c in self.text if c.isalpha()]
        return len(letters) >= 2 and all(c.isupper() for c in letters)


def _tokens(masked: str) -> list[_Token]:
    tokens = []
    for m in WORD.finditer(masked):
        word, start = m.group(), m.start()
        if word[-1] in ".'’-&" and not (
            word.lower() in lex.ABBREVIATIONS or INITIALISM.fullmatch(word)
        ):
            word = word.rstrip(".'’-&")
        possessive = word.endswith(("'s", "’s"))
        if possessive:
            word = word[:-2]
        if word:
            tokens.append(_Token(word, start, start + len(word), possessive))
    return tokens


def _phrase(tokens: list[_Token]) -> str:
    text = " ".join(t.lower for t in tokens)
    return text[4:] if text.startswith("the ") else text


def find_names(masked: str) -> list[Mention]:
    """People, organisations and places in ``masked`` (text whose regex matches are masked)."""
    return _Reader(masked).read()


class _Reader:
    """One pass over one text."""

    def __init__(self, masked: str) -> None:
        self.masked = masked
        self.tokens = _tokens(masked)
        self.found: list[Mention] = []
        self.person_parts: set[str] = set()
        self.leftovers: list[_Token] = []

    def read(self) -> list[Mention]:
        tokens, index = self.tokens, 0
        while index < len(tokens):
            if not tokens[index].capitalised:
                index += 1
                continue
            end = index + 1
            while end < len(tokens) and self._joined(tokens[end - 1], tokens[end]):
                end += 1
            while end - 1 > index and tokens[end - 1].lower in lex.CONNECTORS:
                end -= 1
            self._run(index, end)
            index = end
        for token in self.leftovers:
            if token.lower in self.person_parts:
                self._add("person", [token], 0.8)
        return self.found

    def _add(self, kind: str, part: list[_Token], score: float) -> None:
        self.found.append(Mention(kind, part[0].start, part[-1].end, score))

    def _joined(self, left: _Token, right: _Token) -> bool:
        """Whether ``right`` continues a capitalised run that ``left`` is part of."""
        if left.possessive or self.masked[left.end : right.start].strip(" \t") != "":
            return False
        return right.capitalised or (right.lower in lex.CONNECTORS and right.text != "The")

    def _sentence_initial(self, token: _Token) -> bool:
        before = self.masked[: token.start].rstrip(" \t")
        if not before:
            return True
        if before[-1] == "." and before.split()[-1].lower() in lex.ABBREVIATIONS:
            return False
        return before[-1] in SENTENCE_BREAKS

    def _neighbour(self, at: int, step: int) -> str:
        """The word right before (step -1) or after (+1) token ``at``, across spaces only."""
        other = at + step
        if not 0 <= other < len(self.tokens):
            return ""
        left, right = sorted((self.tokens[other], self.tokens[at]), key=lambda t: t.start)
        gap = self.masked[left.end : right.start]
        return self.tokens[other].lower if gap.strip(" \t,") == "" else ""

    def _run(self, first: int, stop: int) -> None:
        """Cut one capitalised run ``tokens[first:stop]`` into mentions."""
        tokens, i = self.tokens, first
        while i < stop:
            token = tokens[i]
            lower = token.lower
            caps_org = token.all_caps and lower in lex.ORGS
            if lower in lex.CONNECTORS or (lower in lex.NOT_ENTITIES and not caps_org):
                i += 1
                continue
            initial = self._sentence_initial(token)
            before = self._neighbour(i, -1)
            after = "" if token.possessive else self._neighbour(i, +1)
            j, kind = self._lexicon_match(i, stop, before, after)
            if kind is not None:
                self._add(kind, tokens[i:j], 0.92 if j - i > 1 or not initial else 0.88)
                i = j
                continue
            j = self._surname_end(i + 1, stop, limit=3)
            if lower in lex.PERSON_TITLES and j > i + 1:
                self._add("person", tokens[i + 1 : j], 0.9)
                self.person_parts.update(t.lower for t in tokens[i + 1 : j])
                i = j
                continue
            j, kind = self._affix_match(i, stop)
            if kind is not None:
                self._add(kind, tokens[i:j], 0.85)
                i = j
                continue
            if lower in lex.FIRST_NAMES:
                j = i + 1 if token.possessive else self._surname_end(i + 1, stop, limit=2)
                ambiguous = lower in lex.AMBIGUOUS_NAMES
                cue = (
                    before in lex.PERSON_CUES_BEFORE
                    or after in lex.PERSON_CUES_AFTER
                    or token.possessive
                )
                if not ambiguous or cue or not initial:
                    score = 0.93 if j > i + 1 else (0.75 if ambiguous else 0.88)
                    self._add("person", tokens[i:j], score)
                    if j > i + 1:
                        self.person_parts.update(t.lower for t in tokens[i:j])
                    i = j
                    continue
            i = self._unknown(i, stop, initial, before)

    def _lexicon_match(self, i: int, stop: int, before: str, after: str) -> tuple[int, str | None]:
        """Longest run from ``i`` that is a known organisation or place."""
        tokens = self.tokens
        for j in range(min(stop, i + 6), i, -1):
            if tokens[j - 1].lower in lex.CONNECTORS or any(
                t.possessive for t in tokens[i : j - 1]
            ):
                continue
            phrase = _phrase(tokens[i:j])
            if phrase in lex.LOCATIONS:
                if j - i == 1 and phrase in lex.FIRST_NAMES:
                    if before in lex.PERSON_CUES_BEFORE or after in lex.PERSON_CUES_AFTER:
                        return i, None
                if phrase == "us" and not tokens[i].all_caps:
                    continue
                return j, "location"
            # An organisation that is also a plain word ("Target", "Shell") needs its capital.
            if phrase in lex.ORGS and (j - i > 1 or tokens[i].capitalised):
                return j, "org"
        return i, None

    def _affix_match(self, i: int, stop: int) -> tuple[int, str | None]:
        """``University of X`` / ``X University`` / ``Mount X`` / ``X Street`` shapes."""
        tokens = self.tokens
        lower = tokens[i].lower
        if (
            lower in lex.ORG_PREFIXES
            and i + 2 < stop
            and tokens[i + 1].lower == "of"
            and tokens[i + 2].capitalised
        ):
            j = i + 3
            while j < stop and (tokens[j].capitalised or tokens[j].lower in lex.CONNECTORS):
                j += 1
            while tokens[j - 1].lower in lex.CONNECTORS:
                j -= 1
            return j, "org"
        if (
            lower.rstrip(".") in lex.LOCATION_PREFIXES
            and i + 1 < stop
            and tokens[i + 1].capitalised
        ):
            return i + 2, "location"
        for k in range(i + 1, min(stop, i + 5)):
            if tokens[k - 1].possessive:
                break
            word = tokens[k].lower.rstrip(".") if tokens[k].capitalised else ""
            if word in lex.ORG_SUFFIXES or tokens[k].lower in lex.ORG_SUFFIXES:
                return k + 1, "org"
            if word in lex.LOCATION_SUFFIXES:
                return k + 1, "location"
        return i, None

    def _surname_end(self, j: int, stop: int, *, limit: int) -> int:
        """Index after the capitalised surname tokens from ``j`` (at most ``limit`` of them)."""
        end = j
        while end < stop and end - j < limit:
            token = self.tokens[end]
            lower = token.lower
            if (
                not token.capitalised
                or lower in lex.CONNECTORS
                or lower in lex.NOT_ENTITIES
                or lower in lex.ORGS
                or lower in lex.LOCATIONS
                or lower in lex.ORG_SUFFIXES
                or lower in lex.PERSON_TITLES
            ):
                break
            end += 1
            if token.possessive:
                break
        return end

    def _unknown(self, i: int, stop: int, initial: bool, before: str) -> int:
        """A capitalised word no list knows: a mention only with context."""
        tokens = self.tokens
        j = i + 1
        while j < stop and tokens[j].capitalised and not tokens[j - 1].possessive:
            if tokens[j].lower in lex.FIRST_NAMES or tokens[j].lower in lex.NOT_ENTITIES:
                break
            j += 1
        part = tokens[i:j]
        after = "" if part[-1].possessive else self._neighbour(j - 1, +1)
        two_before = self._neighbour(i - 1, -1) if i > 0 else ""
        if initial or tokens[i].all_caps:
            self.leftovers.extend(part)
        elif before in lex.LOCATION_CUES or (before == "to" and two_before in lex.MOTION_VERBS):
            self._add("location", part, 0.6)
        elif before in lex.PERSON_CUES_BEFORE or after in UNKNOWN_PERSON_AFTER:
            self._add("person", part, 0.6)
        else:
            self.leftovers.extend(part)
        return j
