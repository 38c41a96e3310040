"""Generated texts and their cached MiniLM embeddings for bench/vectors.py."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

CACHE = Path(__file__).resolve().parent / ".cache"

SUBJECTS = (
    "The user,Alice,Bob,Our agent,The customer,My sister,Dr. Chen,The support team,Priya,"
    "The new intern,Grandpa,The landlord,Marco,The finance lead,Yuki,The QA engineer,Sam,"
    "The nurse,Olga,The delivery driver,Kwame,The product manager,Lena,The chef"
).split(",")
VERBS = (
    "prefers,mentioned,asked about,decided on,forgot,scheduled,rejected,complained about,"
    "recommended,is researching,paid for,cancelled,wants to learn,argued against,booked,"
    "was surprised by,keeps postponing,finally finished,signed up for,wrote a note about"
).split(",")
OBJECTS = (
    "dark mode in the editor,the quarterly budget review,a trip to Lisbon,vegetarian food,"
    "the migration to Postgres,weekly one-on-one meetings,the onboarding checklist,"
    "renewing TLS certificates,a standing desk,the marathon in autumn,sourdough baking,"
    "the kitchen renovation,a Python course,the tax return,a used electric car,"
    "piano lessons for the kids,the insurance claim,noise-cancelling headphones,"
    "the fantasy novel series,a dentist appointment,the garden irrigation system,"
    "a hiking trip in the Alps,the cloud cost report,learning Japanese,"
    "the wedding photographer,a new espresso machine,the security audit,"
    "adopting a rescue dog,the board game night,solar panels for the roof,"
    "the conference talk proposal,a yoga retreat,the broken dishwasher,"
    "the data retention policy,climbing lessons,a birthday surprise party"
).split(",")
PLACES = (
    "in Lisbon,in Oslo,in Kyoto,at the office,at home,in Denver,in Lagos,on the train,"
    "in Tallinn,at the cafe downstairs,in Seville,in Hanoi,at the gym,in Bergen,online"
).split(",")
WHEN = (
    "yesterday,last week,on Monday,this morning,in March,two days ago,last summer,"
    "over the weekend,at lunch,before the holidays,after the meeting,late at night"
).split(",")
TAILS = (
    ",because it was cheaper,after the incident,and wants a reminder the day before,"
    "although the team had concerns,with a friend from work,but it was harder than expected,"
    "and shared photos,despite the rain,for the first time,and asked for a follow-up,"
    "and it cost about {n} euros,for the {n}th time,with {n} colleagues,"
    "and rated it {r} out of 10,see ticket OPS-{n}"
).split(",")


def texts(n: int, seed: int = 20240) -> list[str]:
    """``n`` distinct short sentences (a running number makes exact repeats impossible)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tail = rng.choice(TAILS).format(n=rng.randint(2, 9999), r=rng.randint(1, 10))
        out.append(
            f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
            f"{rng.choice(PLACES)} {rng.choice(WHEN)} {tail} (#{i})".replace("  ", " ")
        )
    return out


def embeddings(n: int, batch: int = 256) -> npt.NDArray[np.float32]:
    """MiniLM vectors of ``texts(n)``, computed once and cached under ``bench/.cache``."""
    path = CACHE / f"vectors-minilm-{n}.npy"
    if path.exists():
        return np.load(path)
    from dakera_server.engine.text.minilm import MiniLMProvider

    provider = MiniLMProvider.shared()
    corpus = texts(n)
    rows = []
    started = time.perf_counter()
    for start in range(0, n, batch):
        rows.append(provider.embed(corpus[start : start + batch]).vectors)
        done = start + len(rows[-1])
        rate = done / (time.perf_counter() - started)
        print(f"  embedded {done}/{n} ({rate:.0f} texts/s)", flush=True)
    vectors = np.concatenate(rows).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors
