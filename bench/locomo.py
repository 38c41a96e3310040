"""LoCoMo evidence retrieval through the ``dakera`` SDK against a running server (issue 8).

Every turn of each conversation of ``../shared/bench/locomo-dev.json`` becomes one memory of one
agent per conversation: content ``"Speaker: text"``, ``event_time`` = the session's date,
metadata ``{"dia_id", "session"}``, stored with ``store_memories_batch`` (up to 1000 per
request). Each question of categories 1-4 is then a ``recall(top_k=20)``; the table gives
evidence recall@k, hit@k (k = 5, 10, 20) and MRR per category, and recall latency p50/p95 as the
SDK sees it (HTTP included). The metric and evidence clean-up are in ``bench/locomo_data.py``.

Against ``make run``'s server (the root key it printed at first start, or DAKERA_ROOT_API_KEY):

    .venv/bin/python bench/locomo.py --url http://127.0.0.1:3300 --api-key dk_...

or with a server of its own (subprocess on a free port, temporary data dir):

    .venv/bin/python bench/locomo.py --spawn

Options: ``--conversations 0-4`` (the default; 0-2 is the tune split, 3-4 the check split),
``--captions`` (append the shared photo's caption to a turn), ``--session-time`` (every turn gets
the bare session date, so turns have no order; by default turn i of a session is dated
session + i seconds, see ``bench/locomo_data.py``), ``--out FILE`` (markdown table).
Each run uses fresh agent ids and forgets its memories at the end (``--keep`` keeps them).
The last line is machine-readable: ``LOCOMO_SUMMARY {json}``. The machine has 2 cores shared with
other work, so latency numbers are noisy; quality numbers are deterministic.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dakera import DakeraClient
from dakera.models import (
    BatchForgetRequest,
    BatchMemoryFilter,
    BatchStoreMemoryItem,
    BatchStoreMemoryRequest,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.locomo_data import (  # noqa: E402
    DEFAULT_DATA,
    MAX_K,
    Conversation,
    Scores,
    load_conversations,
    metric_names,
    parse_range,
)

BATCH = 1000


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def store_conversation(
    client: DakeraClient,
    conv: Conversation,
    agent_id: str,
    *,
    captions: bool,
    session_time: bool = False,
) -> dict[str, str]:
    """Store every turn of ``conv`` as memories of ``agent_id``; returns memory id → dia_id."""
    dia_of: dict[str, str] = {}
    turns = list(conv.turns)
    for start in range(0, len(turns), BATCH):
        chunk = turns[start : start + BATCH]
        answer = client.store_memories_batch(
            BatchStoreMemoryRequest(
                agent_id=agent_id,
                memories=[
                    BatchStoreMemoryItem(
                        content=turn.content(captions=captions),
                        event_time=turn.session_time if session_time else turn.event_time,
                        metadata={"dia_id": turn.dia_id, "session": turn.session},
                    )
                    for turn in chunk
                ],
            )
        )
        for turn, stored in zip(chunk, answer.stored, strict=True):
            dia_of[stored.id] = turn.dia_id
    return dia_of


def run(
    client: DakeraClient,
    conversations: list[Conversation],
    *,
    captions: bool,
    session_time: bool,
    keep: bool,
) -> tuple[Scores, dict[int, Scores], list[float], float]:
    """Store, recall every question, score. Returns (all, per conversation, latencies, store s)."""
    tag = secrets.token_hex(3)
    total, per_conv, latencies = Scores(), {}, []
    store_seconds = 0.0
    for conv in conversations:
        agent_id = f"{conv.agent_id}-{tag}"
        started = time.perf_counter()
        dia_of = store_conversation(
            client, conv, agent_id, captions=captions, session_time=session_time
        )
        store_seconds += time.perf_counter() - started
        scores = Scores()
        for question in conv.questions:
            started = time.perf_counter()
            answer = client.recall(agent_id, question.text, top_k=MAX_K)
            latencies.append((time.perf_counter() - started) * 1000.0)
            ranked = [dia_of.get(m.id, "") for m in answer.ranked]
            scores.add(question, ranked)
        per_conv[conv.index] = scores
        total.merge(scores)
        if not keep:
            client.batch_forget(
                BatchForgetRequest(agent_id=agent_id, filter=BatchMemoryFilter(min_importance=0.0))
            )
    return total, per_conv, latencies, store_seconds


def table(scores: Scores) -> str:
    """Markdown table: one row per category and one for all questions."""
    names = metric_names()
    lines = [
        "| category | questions | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for group in scores.groups():
        cells = " | ".join(f"{scores.mean(group, name):.1f}" for name in names)
        lines.append(f"| {group} | {scores.counts[group]} | {cells} |")
    return "\n".join(lines)


def split_line(name: str, scores: Scores) -> str:
    """One row of the split table (recall@10, hit@10, MRR over all categories)."""
    return (
        f"| {name} | {scores.counts.get('all', 0)} | {scores.mean('all', 'recall@10'):.1f} | "
        f"{scores.mean('all', 'hit@10'):.1f} | {scores.mean('all', 'mrr'):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3300")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--spawn", action="store_true", help="start a server subprocess")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--conversations", default="0-4")
    parser.add_argument("--captions", action="store_true")
    parser.add_argument("--session-time", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    wanted = set(parse_range(args.conversations))
    conversations = [c for c in load_conversations(args.data) if c.index in wanted]
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        url, key = args.url, args.api_key
        if args.spawn:
            from tests.conftest import ROOT_KEY
            from tests.processes import spawn_server

            server = spawn_server(Path(tmp) / "data", Path(tmp) / "server.log")
            url, key = server.url, ROOT_KEY
        try:
            client = DakeraClient(url, api_key=key, timeout=600)
            total, per_conv, latencies, store_s = run(
                client,
                conversations,
                captions=args.captions,
                session_time=args.session_time,
                keep=args.keep,
            )
            client.close()
        finally:
            if server is not None:
                server.stop()
    tune, check = Scores(), Scores()
    for index, scores in per_conv.items():
        (tune if index <= 2 else check).merge(scores)
    turns = sum(len(c.turns) for c in conversations)
    lines = [
        f"Conversations {sorted(wanted)}: {turns} turns stored in {store_s:.1f} s "
        f"({turns / store_s:.0f}/s), {len(latencies)} recalls (top_k={MAX_K}).",
        "",
        table(total),
        "",
        "| split | questions | recall@10 | hit@10 | MRR |",
        "|---|---:|---:|---:|---:|",
    ]
    if tune.counts:
        lines.append(split_line("tune (0-2)", tune))
    if check.counts:
        lines.append(split_line("check (3-4)", check))
    lines.append(split_line("all", total))
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    lines += ["", f"Recall latency through the SDK: p50 {p50:.1f} ms, p95 {p95:.1f} ms."]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    summary = {
        "conversations": sorted(wanted),
        "questions": total.counts.get("all", 0),
        "captions": args.captions,
        "session_time": args.session_time,
        **{name: round(total.mean("all", name), 2) for name in metric_names()},
        "tune_recall@10": round(tune.mean("all", "recall@10"), 2) if tune.counts else None,
        "check_recall@10": round(check.mean("all", "recall@10"), 2) if check.counts else None,
        "recall_p50_ms": round(p50, 2),
        "recall_p95_ms": round(p95, 2),
        "store_per_s": round(turns / store_s, 1),
    }
    print("LOCOMO_SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
