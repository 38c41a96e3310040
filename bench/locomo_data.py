"""LoCoMo retrieval data and metric, shared by ``bench/locomo.py`` and ``bench/locomo_ablation.py``.

The data file is ``../shared/bench/locomo-dev.json`` (five of the ten LoCoMo conversations; see
that folder's README). It is test data only and never copied into this repository.

Metric (shared/bench/README.md): every turn is one memory; each question of categories 1-4 with
non-empty (cleaned) evidence is a query; per question, evidence recall@k is the share of its
evidence turns in the top k, hit@k is whether any is, MRR is 1 / rank of the first evidence turn
within the top ``MAX_K`` (0 when none is). Scores are means over questions, per category and for
all categories together, in percent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "bench" / "locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (5, 10, 20)
MAX_K = max(KS)

_ID = re.compile(r"^D(\d+):(\d+)$")


@dataclass(frozen=True)
class Turn:
    """One conversation turn, as it is stored: speaker prefix, session date, dialogue id.

    LoCoMo dates sessions, not turns. ``event_time`` is the session's date plus the turn's
    position in the session in seconds, so the turns keep their order the way a chat log's
    message timestamps would (the server's session neighbours need an order; see
    docs/benchmarks.md). ``session_time`` is the bare session date.
    """

    dia_id: str
    session: int
    position: int
    speaker: str
    text: str
    caption: str | None
    session_time: int

    @property
    def event_time(self) -> int:
        """Session date + position seconds (a turn never crosses into another minute's
        neighbour window of another session: sessions are days apart)."""
        return self.session_time + self.position

    def content(self, *, captions: bool = False) -> str:
        """The memory text: ``"Speaker: text"``, plus the shared photo's caption if asked."""
        body = f"{self.speaker}: {self.text}"
        if captions and self.caption:
            body += f" [shares {self.caption}]"
        return body


@dataclass(frozen=True)
class Question:
    """A scored question: text, category, and the cleaned evidence turn ids."""

    text: str
    category: int
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Conversation:
    """One LoCoMo conversation: its turns in order and its scored questions."""

    index: int
    sample_id: str
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]

    @property
    def agent_id(self) -> str:
        """The agent that holds this conversation's memories in the benchmark."""
        return f"locomo-{self.sample_id}"


def parse_session_time(value: str) -> int:
    """``"1:56 pm on 8 May, 2023"`` → Unix seconds (the data carries no zone: UTC)."""
    parsed = datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y")
    return int(parsed.replace(tzinfo=UTC).timestamp())


def clean_evidence(raw: Sequence[str], known: set[str]) -> tuple[str, ...]:
    """Evidence ids as the README says: split 'D8:6; D9:17', fix 'D:11:26' → 'D11:26' and
    'D30:05' → 'D30:5', drop a bare 'D' and ids that match no turn; keep order, no repeats."""
    out: list[str] = []
    for item in raw:
        for piece in re.split(r"[;\s]+", item):
            piece = piece.strip()
            if piece.startswith("D:"):
                piece = "D" + piece[2:]
            match = _ID.match(piece)
            if match is None:
                continue
            cleaned = f"D{int(match.group(1))}:{int(match.group(2))}"
            if cleaned in known and cleaned not in out:
                out.append(cleaned)
    return tuple(out)


def load_conversations(path: Path = DEFAULT_DATA) -> list[Conversation]:
    """Every conversation of the file, in file order (index 0 = the first)."""
    data = json.loads(path.read_text())
    conversations = []
    for index, sample in enumerate(data):
        conv = sample["conversation"]
        numbers = sorted(
            int(key.split("_")[1])
            for key in conv
            if re.fullmatch(r"session_\d+", key) and isinstance(conv[key], list)
        )
        turns = []
        for number in numbers:
            when = parse_session_time(conv[f"session_{number}_date_time"])
            for position, turn in enumerate(conv[f"session_{number}"]):
                turns.append(
                    Turn(
                        dia_id=turn["dia_id"],
                        session=number,
                        position=position,
                        speaker=turn["speaker"],
                        text=turn["text"],
                        caption=turn.get("blip_caption"),
                        session_time=when,
                    )
                )
        known = {t.dia_id for t in turns}
        questions = []
        for qa in sample["qa"]:
            if qa.get("category") not in CATEGORIES:
                continue
            evidence = clean_evidence(qa.get("evidence", []), known)
            if evidence:
                questions.append(Question(qa["question"], qa["category"], evidence))
        conversations.append(
            Conversation(index, sample["sample_id"], tuple(turns), tuple(questions))
        )
    return conversations


@dataclass
class Scores:
    """Accumulated per-question scores, grouped by category (and "all")."""

    sums: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, question: Question, ranked: Sequence[str]) -> None:
        """Score one question against its ranked list of dialogue ids (best first)."""
        evidence = set(question.evidence)
        values: dict[str, float] = {}
        for k in KS:
            found = len(evidence.intersection(ranked[:k]))
            values[f"recall@{k}"] = found / len(evidence)
            values[f"hit@{k}"] = 1.0 if found else 0.0
        first = next((i for i, d in enumerate(ranked[:MAX_K]) if d in evidence), None)
        values["mrr"] = 0.0 if first is None else 1.0 / (first + 1)
        for group in (CATEGORIES[question.category], "all"):
            bucket = self.sums.setdefault(group, {})
            for name, value in values.items():
                bucket[name] = bucket.get(name, 0.0) + value
            self.counts[group] = self.counts.get(group, 0) + 1

    def merge(self, other: Scores) -> None:
        """Add another accumulator's questions to this one."""
        for group, bucket in other.sums.items():
            mine = self.sums.setdefault(group, {})
            for name, value in bucket.items():
                mine[name] = mine.get(name, 0.0) + value
            self.counts[group] = self.counts.get(group, 0) + other.counts[group]

    def mean(self, group: str, name: str) -> float:
        """Mean of ``name`` over the group's questions, in percent (0 for an empty group)."""
        count = self.counts.get(group, 0)
        return 100.0 * self.sums[group][name] / count if count else 0.0

    def groups(self) -> list[str]:
        """Category names present, in category order, then "all"."""
        names = [c for c in CATEGORIES.values() if c in self.counts]
        return [*names, "all"] if "all" in self.counts else names


def metric_names() -> list[str]:
    """Column names of the metric table, in order."""
    return [f"{m}@{k}" for m in ("recall", "hit") for k in KS] + ["mrr"]


def parse_range(text: str) -> list[int]:
    """``"0-4"`` / ``"0,2,3"`` / ``"1"`` → conversation indexes."""
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-")
            out.extend(range(int(low), int(high) + 1))
        elif part.strip():
            out.append(int(part))
    return out
