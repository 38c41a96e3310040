"""Embedding speed of the built-in MiniLM provider: ms per text single, texts/s batched.

    .venv/bin/python bench/embeddings.py            # defaults: 512 texts, batch 32
    .venv/bin/python bench/embeddings.py --texts 2048 --batch 32 --repeat 5

Texts are memory-like sentences of 6-40 words (8-50 tokens, like agent memories), made
deterministically so runs compare. "single" embeds one text per call, as a recall query does;
"batched" embeds --batch texts per call, as a bulk store does. It also prints the load time
(sha256 of the 90 MB weights included), which is paid once per process.
Targets on the project's 2-core machine: 5-6 ms/text single, >= 260 texts/s batched.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from dakera_server.engine.text.minilm import MiniLMProvider

SUBJECTS = [
    "The user",
    "Alice",
    "Bob's manager",
    "Our agent",
    "The customer",
    "My sister",
    "Dr. Chen",
]
VERBS = ["prefers", "mentioned", "asked about", "decided on", "forgot", "scheduled", "rejected"]
OBJECTS = [
    "dark mode in the editor",
    "the quarterly budget review",
    "a trip to Lisbon in March",
    "vegetarian food at the offsite",
    "the migration to Postgres 16",
    "weekly one-on-one meetings on Tuesdays",
    "the new onboarding checklist for interns",
    "renewing the TLS certificates before they expire",
]
TAILS = [
    "",
    " because it was cheaper",
    " after the incident last week",
    ", and wants a reminder the day before",
    " although the team had concerns about the timeline and the staffing plan",
    " -- see ticket OPS-4821 for details and the follow-up actions agreed with security",
]


def make_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}."
        for _ in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    provider = MiniLMProvider.load()
    print(f"load (read + sha256 + prepare): {time.perf_counter() - started:.3f} s")

    texts = make_texts(args.texts)
    batch = provider.embed(texts)
    tokens = statistics.mean(batch.content_tokens)
    print(f"{len(texts)} texts, mean {tokens:.1f} tokens (with [CLS]/[SEP])")

    single = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for text in texts[:200]:
            provider.embed_one(text)
        single.append((time.perf_counter() - t0) / min(200, len(texts)) * 1e3)
    print(f"single : {min(single):6.2f} ms/text   (best of {args.repeat})")

    batched = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for i in range(0, len(texts), args.batch):
            provider.embed(texts[i : i + args.batch])
        batched.append(len(texts) / (time.perf_counter() - t0))
    print(f"batched: {max(batched):6.0f} texts/s (batch {args.batch}, best of {args.repeat})")
    print(f"ratio  : {max(batched) * min(single) / 1e3:.1f}x batched over single")


if __name__ == "__main__":
    main()
