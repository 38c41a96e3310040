"""Each recall-quality idea on LoCoMo, switched on and off, in-process on the real engine.

Same data, memories and metric as ``bench/locomo.py`` (``bench/locomo_data.py``), but recall is
called in-process with a :class:`~dakera_server.engine.memory.fusion.RecallTuning` per
variant, so one store serves every variant (the server always runs the defaults). Tune split:
conversations 0-2; check split: 3-4. The defaults of ``RecallTuning`` were picked on the tune
split only.

    .venv/bin/python bench/locomo_ablation.py
    .venv/bin/python bench/locomo_ablation.py --captions        # turns + photo captions
    .venv/bin/python bench/locomo_ablation.py --session-time    # bare session dates

Prints a markdown table (recall@10 / hit@10 per split, MRR, recall@10 per category and
in-process search p50 on all)
and ``ABLATION_SUMMARY {json}``. Quality numbers are deterministic up to ties; timings are noisy
(2 shared cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.locomo_data import MAX_K, Conversation, Scores, load_conversations  # noqa: E402
from dakera_server.engine.access import Caller, Scope  # noqa: E402
from dakera_server.engine.memory.engine import MemoryEngine, NewMemory  # noqa: E402
from dakera_server.engine.memory.fusion import DEFAULT_TUNING, RecallTuning  # noqa: E402
from dakera_server.engine.memory.recall import recall  # noqa: E402
from dakera_server.engine.text.embedding import EmbeddingBatch, EmbeddingProvider  # noqa: E402
from dakera_server.engine.text.providers import create_provider  # noqa: E402
from dakera_server.storage.sqlite import SqliteStore  # noqa: E402

CALLER = Caller("bench", "bench", Scope.SUPER_ADMIN)
PLAIN = RecallTuning(
    vector_weight=0.5,
    fill_vector=False,
    when_boost=0.0,
    window_boost=0.0,
    speaker_boost=0.0,
    neighbour_weight=0.0,
)

# (name, routing, fusion, tuning): cumulative first, then each kept idea left out or varied.
PREVIOUS = replace(DEFAULT_TUNING, vector_weight=0.4, neighbour_radius=1)  # before issue 18
VARIANTS: list[tuple[str, str | None, str | None, RecallTuning]] = [
    ("BM25 only", "bm25", None, PLAIN),
    ("MiniLM dense only", "vector", None, PLAIN),
    ("RRF fusion (k=60)", None, "rrf", PLAIN),
    ("min-max fusion, w=0.5 (issue baseline)", None, None, PLAIN),
    ("+ vector weight 0.4", None, None, replace(PLAIN, vector_weight=0.4)),
    (
        "+ exact cosine for BM25-only candidates",
        None,
        None,
        replace(PLAIN, vector_weight=0.4, fill_vector=True),
    ),
    (
        "+ when-question boost 0.3",
        None,
        None,
        replace(PREVIOUS, window_boost=0.0, speaker_boost=0.0, neighbour_weight=0.0),
    ),
    (
        "+ named-period boost 0.5",
        None,
        None,
        replace(PREVIOUS, speaker_boost=0.0, neighbour_weight=0.0),
    ),
    ("+ speaker boost 0.1", None, None, replace(PREVIOUS, neighbour_weight=0.0)),
    ("+ session neighbours 0.7, 1 turn (previous defaults)", None, None, PREVIOUS),
    ("+ 2 turns each way, decay 0.9", None, None, replace(PREVIOUS, neighbour_radius=2)),
    ("+ vector weight 0.45 (= defaults)", None, None, DEFAULT_TUNING),
    ("defaults without when boost", None, None, replace(DEFAULT_TUNING, when_boost=0.0)),
    ("defaults without period boost", None, None, replace(DEFAULT_TUNING, window_boost=0.0)),
    ("defaults without speaker boost", None, None, replace(DEFAULT_TUNING, speaker_boost=0.0)),
    ("defaults without exact cosine fill", None, None, replace(DEFAULT_TUNING, fill_vector=False)),
    ("defaults without neighbours", None, None, replace(DEFAULT_TUNING, neighbour_weight=0.0)),
    ("defaults, RRF fusion", None, "rrf", DEFAULT_TUNING),
    ("defaults, neighbour decay 0.7", None, None, replace(DEFAULT_TUNING, neighbour_decay=0.7)),
    ("defaults, neighbour decay 1.0", None, None, replace(DEFAULT_TUNING, neighbour_decay=1.0)),
    ("defaults, 3 turns each way", None, None, replace(DEFAULT_TUNING, neighbour_radius=3)),
    ("defaults, neighbour weight 0.6", None, None, replace(DEFAULT_TUNING, neighbour_weight=0.6)),
    ("defaults, neighbour weight 0.8", None, None, replace(DEFAULT_TUNING, neighbour_weight=0.8)),
]


class QueryCache:
    """The built-in provider, with each question's embedding computed once for all variants
    (every variant asks the same 760 questions; the vectors are identical either way)."""

    def __init__(self, inner: EmbeddingProvider) -> None:
        self.inner = inner
        self.model_name, self.dimension, self.max_tokens = (
            inner.model_name,
            inner.dimension,
            inner.max_tokens,
        )
        self._queries: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        return self.inner.embed(texts)

    def embed_one(self, text: str) -> np.ndarray:
        if text not in self._queries:
            self._queries[text] = self.inner.embed_one(text)
        return self._queries[text]


def build(
    conversations: list[Conversation], work: Path, *, captions: bool, session_time: bool
) -> tuple[MemoryEngine, dict[str, str]]:
    """A real memory engine holding every turn; returns it and memory id → dia_id."""
    engine = MemoryEngine(
        SqliteStore(work / "dakera.db"),
        QueryCache(create_provider("builtin")),
        max_content_bytes=100_000,
        exact_threshold=10_000,
    )
    dia_of: dict[str, str] = {}
    for conv in conversations:
        items = [
            NewMemory(
                agent_id=conv.agent_id,
                content=turn.content(captions=captions),
                event_time=turn.session_time if session_time else turn.event_time,
                metadata={"dia_id": turn.dia_id, "session": turn.session},
            )
            for turn in conv.turns
        ]
        for memory in engine.store(CALLER, items).memories:
            dia_of[memory.id] = (memory.metadata or {})["dia_id"]
    return engine, dia_of


def evaluate(
    engine: MemoryEngine,
    dia_of: dict[str, str],
    conversations: list[Conversation],
    routing: str | None,
    fusion: str | None,
    tuning: RecallTuning,
) -> tuple[Scores, Scores, list[float]]:
    """(tune split scores, check split scores, search ms per question)."""
    tune, check, timings = Scores(), Scores(), []
    for conv in conversations:
        for question in conv.questions:
            outcome = recall(
                engine,
                CALLER,
                conv.agent_id,
                question.text,
                top_k=MAX_K,
                routing=routing,
                fusion=fusion,
                touch=False,
                tuning=tuning,
            )
            timings.append(outcome.search_ms)
            ranked = [dia_of[r.memory.id] for r in outcome.results]
            (tune if conv.index <= 2 else check).add(question, ranked)
    return tune, check, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captions", action="store_true")
    parser.add_argument("--session-time", action="store_true")
    args = parser.parse_args()
    conversations = load_conversations()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        engine, dia_of = build(
            conversations, Path(tmp), captions=args.captions, session_time=args.session_time
        )
        print(f"stored {len(dia_of)} turns in {time.perf_counter() - started:.0f} s", flush=True)
        print(
            "| variant | tune R@10 | tune H@10 | check R@10 | check H@10 | all R@10 | "
            "all H@10 | all MRR | multi-hop | temporal | open-domain | single-hop | "
            "search p50 ms |"
        )
        print("|---|" + "---:|" * 12)
        for name, routing, fusion, tuning in VARIANTS:
            tune, check, timings = evaluate(engine, dia_of, conversations, routing, fusion, tuning)
            total = Scores()
            total.merge(tune)
            total.merge(check)
            row = {
                "variant": name,
                "tune_recall@10": tune.mean("all", "recall@10"),
                "tune_hit@10": tune.mean("all", "hit@10"),
                "check_recall@10": check.mean("all", "recall@10"),
                "check_hit@10": check.mean("all", "hit@10"),
                "all_recall@10": total.mean("all", "recall@10"),
                "all_hit@10": total.mean("all", "hit@10"),
                "all_mrr": total.mean("all", "mrr"),
                **{
                    f"{name}_recall@10": total.mean(name, "recall@10")
                    for name in ("multi-hop", "temporal", "open-domain", "single-hop")
                },
                "search_p50_ms": statistics.median(timings),
            }
            rows.append(row)
            cells = " | ".join(f"{v:.1f}" for k, v in row.items() if k != "variant")
            print(f"| {name} | {cells} |", flush=True)
    summary = [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    print("ABLATION_SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
