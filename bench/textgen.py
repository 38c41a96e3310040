"""Deterministic generated memory texts for benchmarks (varied, realistic-looking sentences)."""

from __future__ import annotations

import random

PEOPLE = "Anna Ben Carla Dmitri Elena Farid Grace Hiro Ines Jonas Kira Luca Maya Nora Omar".split()
PLACES = "Lisbon Oslo Kyoto Denver Lagos Quito Tallinn Perth Porto Hanoi Seville Bergen".split()
THINGS = (
    "guitar lessons,marathon training,sourdough bread,a job interview,the garden,"
    "a new laptop,the book club,a hiking trip,piano practice,the wedding,a startup idea,"
    "the dentist,a painting class,the quarterly report,a chess tournament,the move"
).split(",")
VERBS = "mentioned,talked about,planned,worried about,was excited about,finished,started".split(",")
WHEN = "yesterday,last week,on Monday,this morning,in March,two days ago,last summer".split(",")
DETAILS = (
    "and wants to do it again,with a friend from work,but it was harder than expected,"
    "and shared photos,after a long break,to relax after work,because the kids asked,"
    "despite the rain,for the first time,and felt proud afterwards"
).split(",")


def memory_texts(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct sentences like "Anna talked about sourdough bread in Oslo yesterday …"."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        texts.append(
            f"{person} {rng.choice(VERBS)} {rng.choice(THINGS)} in {place} "
            f"{rng.choice(WHEN)} {rng.choice(DETAILS)} (note {i})."
        )
    return texts


def queries(n: int, seed: int = 11) -> list[str]:
    """Questions in the same vocabulary."""
    rng = random.Random(seed)
    return [
        f"What did {rng.choice(PEOPLE)} say about {rng.choice(THINGS)} in {rng.choice(PLACES)}?"
        for _ in range(n)
    ]
