"""Input validation precision and reach: false positives on benign text, refusal rates on attacks.

    .venv/bin/python bench/validation.py
    .venv/bin/python bench/validation.py --misses 5     # also print a few passed payloads

Three tables, all from the same checks the server runs (``RequestValidator``, no HTTP):

1. Benign text stored as memory content: every LoCoMo turn (``../shared/bench/locomo-dev.json``)
   and the hand-written agent memories of ``tests/security/benign_texts.json`` (code, shell,
   prose mentioning SQL/HTML, URLs…). Target: at most 0.5 % refused. Then benign *structured*
   values (``tests/security/benign_fields.json``): metadata keys that loaders, tracers and
   spreadsheets produce (including command words used as labels: "sleep hours", "node id") and
   public webhook/API URLs. Target: none refused.
2. Attack payloads (``../shared/corpora``, PayloadsAllTheThings) put into structured fields:
   agent id, namespace, session id, memory id, tag, metadata key, URL field, path parameter.
   Target: at least 99 % refused.
3. The same payloads as free text (memory content): refusal rate per category. Free text is
   scanned for unambiguous attack shapes only, so these rates are well below 100 % by design —
   many corpus lines are fragments (``ORDER BY 1``, ``sleep 5``, ``</div>``) that are
   everyday text.

4. Our label-probe corpus (``tests/security/label_probes.json``): SSRF targets and system paths
   spelled so that they fit the tag and metadata-key allow-lists (``0x7f000001``,
   ``127.0.0.1:6379``, ``bin/visudo``, ``wp-config-php.bak``), refusal rate as tag and as metadata
   key; and everyday tags that look close to them (``lib/utils``, ``10.2``, ``port:8080``),
   false-refusal rate as tags (target: none).

Timing is CPU time per item (one thread); the machine is shared, so treat it as indicative.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dakera_server.errors import DakeraError
from dakera_server.security.inspection.detectors import CATEGORIES, detect
from dakera_server.security.validation import RequestValidator

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPORA = SHARED / "corpora"
LOCOMO = SHARED / "bench" / "locomo-dev.json"
BENIGN = REPO / "tests" / "security" / "benign_texts.json"
BENIGN_FIELDS = REPO / "tests" / "security" / "benign_fields.json"
LABEL_PROBES = REPO / "tests" / "security" / "label_probes.json"
VALIDATOR = RequestValidator(["/v1/agents/{agent_id}/memories"])
STRUCTURED: dict[str, Callable[[str], Any]] = {
    "agent_id": lambda p: {"agent_id": p, "content": "x"},
    "namespace": lambda p: {"namespace": p},
    "session_id": lambda p: {"session_id": p},
    "memory_ids[]": lambda p: {"memory_ids": [p]},
    "tags[]": lambda p: {"tags": [p]},
    "metadata key": lambda p: {"metadata": {p: 1}},
    "url field": lambda p: {"webhook_url": p},
}


def refused(document: Any) -> bool:
    """True when the validator refuses ``document`` as a JSON body."""
    try:
        VALIDATOR.check_document(document, None)
    except DakeraError:
        return True
    return False


def path_refused(payload: str) -> bool:
    """True when ``payload`` as the agent_id path parameter is refused."""
    try:
        VALIDATOR.check_path(f"/v1/agents/{payload}/memories")
    except DakeraError:
        return True
    return False


def locomo_turns() -> list[str]:
    """Every ``text`` of every session of every LoCoMo conversation."""
    data = json.loads(LOCOMO.read_text())
    return [
        turn["text"]
        for conversation in data
        for key, session in conversation["conversation"].items()
        if key.startswith("session_") and isinstance(session, list)
        for turn in session
    ]


def corpus(category: str) -> list[str]:
    """Non-empty payload lines of one category."""
    return [
        line
        for path in sorted((CORPORA / category).glob("*.txt"))
        for line in path.read_text(errors="replace").splitlines()
        if line.strip()
    ]


def benign_table() -> None:
    sets = {"LoCoMo turns": locomo_turns()}
    sets.update(json.loads(BENIGN.read_text()))
    print("1. Benign text as memory content (target: <= 0.5 % refused)")
    print(f"{'set':28} {'items':>6} {'refused':>8} {'rate':>7} {'CPU us':>8}")
    total = bad = 0
    for name, items in sets.items():
        start = time.process_time()
        hits = [text for text in items if refused({"content": text})]
        per_item = (time.process_time() - start) / len(items) * 1e6
        total += len(items)
        bad += len(hits)
        print(
            f"{name:28} {len(items):6} {len(hits):8} {len(hits) / len(items):7.2%} {per_item:8.1f}"
        )
        for text in hits:
            print(f"{'':28}   refused: {text[:70]!r} ({detect(text)})")
    print(f"{'all benign':28} {total:6} {bad:8} {bad / total:7.2%}\n")
    fields = json.loads(BENIGN_FIELDS.read_text())
    placed = {
        "metadata keys": [{"metadata": {key: "v"}} for key in fields["metadata keys"]],
        "URL fields": [{"webhook_url": url} for url in fields["URL fields"]],
    }
    print("   Benign structured values (target: none refused)")
    for name, documents in placed.items():
        hits = [d for d in documents if refused(d)]
        print(f"{name:28} {len(documents):6} {len(hits):8} {len(hits) / len(documents):7.2%}")
        for document in hits:
            print(f"{'':28}   refused: {document}")
    print()


def structured_table(categories: list[str], misses: int) -> None:
    print("2. Attack payloads in structured fields (target: >= 99 % refused)")
    columns = [*STRUCTURED, "path param"]
    print(f"{'category':15} {'lines':>6} " + " ".join(f"{c:>13}" for c in columns))
    totals: Counter[str] = Counter()
    count = 0
    for category in categories:
        lines = corpus(category)
        count += len(lines)
        cells = []
        for column in columns:
            if column == "path param":
                n = sum(path_refused(p) for p in lines if "/" not in p and p.strip())
                n += sum(1 for p in lines if "/" in p)  # a '/' cannot form this path at all
            else:
                make = STRUCTURED[column]
                passed = [p for p in lines if not refused(make(p))]
                n = len(lines) - len(passed)
                for payload in passed[:misses]:
                    print(f"   passed as {column}: {payload[:80]!r}")
            totals[column] += n
            cells.append(f"{n / len(lines):13.2%}")
        print(f"{category:15} {len(lines):6} " + " ".join(cells))
    print(f"{'all':15} {count:6} " + " ".join(f"{totals[c] / count:13.2%}" for c in columns))
    print()


def free_text_table(categories: list[str], misses: int) -> None:
    print("3. Attack payloads as free text (memory content): refusal rate per category")
    print(f"{'category':15} {'lines':>6} {'refused':>8} {'as own':>7}  detected as")
    for category in categories:
        lines = corpus(category)
        found = Counter(detect(p) for p in lines)
        refused_n = len(lines) - found[None]
        own = {"sql": "sql injection", "nosql": "nosql injection", "command": "command injection",
               "path_traversal": "path traversal", "xss": "xss", "ssrf": "ssrf",
               "crlf": "header injection"}[category]  # fmt: skip
        detail = ", ".join(f"{k}: {v}" for k, v in found.most_common() if k is not None)
        print(
            f"{category:15} {len(lines):6} {refused_n / len(lines):8.1%} "
            f"{found[own] / len(lines):7.1%}  {detail}"
        )
        for payload in [p for p in lines if found and detect(p) is None][:misses]:
            print(f"   passed: {payload[:80]!r}")
    print(f"(categories named in refusals: {', '.join(CATEGORIES)})")


def label_table(misses: int) -> None:
    data = json.loads(LABEL_PROBES.read_text())
    print("\n4. Label probes (tests/security/label_probes.json)")
    print(f"{'set':16} {'items':>6} {'as tag':>9} {'as key':>9}  (share refused)")
    for name, items in data.items():
        as_tag = [p for p in items if refused({"tags": [p]})]
        as_key = [p for p in items if refused({"metadata": {p: 1}})]
        print(
            f"{name:16} {len(items):6} {len(as_tag) / len(items):9.2%} "
            f"{len(as_key) / len(items):9.2%}"
        )
        shown = [p for p in items if (p in as_tag) == (name == "benign tags")]
        for label in shown[:misses]:
            print(f"   {'refused' if name == 'benign tags' else 'passed'} as tag: {label!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", type=int, default=0, help="print this many passed payloads")
    args = parser.parse_args()
    if not CORPORA.is_dir() or not LOCOMO.is_file():
        raise SystemExit(f"needs {CORPORA} and {LOCOMO} (the shared test data)")
    categories = sorted(p.name for p in CORPORA.iterdir() if p.is_dir())
    benign_table()
    structured_table(categories, args.misses)
    free_text_table(categories, args.misses)
    label_table(args.misses)


if __name__ == "__main__":
    main()
