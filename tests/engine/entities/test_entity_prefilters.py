"""The extractor's cheap pre-checks (which date patterns can match, whether any product's first
word occurs) skip work without losing a match: one text per date pattern, and the product
cases a lower-cased word check could miss."""

from __future__ import annotations

import pytest

from dakera_server.engine.entities.extractor import (
    ABSOLUTE_DATES,
    CONTEXT_DATES,
    RELATIVE_DATES,
    RuleExtractor,
)

EXTRACT = RuleExtractor()

# (text, the date found, its ISO form): one per pattern of ABSOLUTE, CONTEXT, RELATIVE_DATES.
DATES = [
    ("We met on March 14, 2023.", "March 14, 2023", "2023-03-14"),
    ("Born 4th of July 1990.", "4th of July 1990", "1990-07-04"),
    ("Since June 2019 she lives there.", "June 2019", "2019-06"),
    ("The deadline is 2024-05-06.", "2024-05-06", "2024-05-06"),
    ("Signed on 3/4/2021 by both.", "3/4/2021", "2021-03-04"),
    ("It happened in 1998.", "1998", "1998"),
    ("We left in August.", "August", ""),
    ("Tonight we cook.", "Tonight", ""),
    ("Last summer was hot.", "Last summer", ""),
    ("See you next March!", "next March", ""),
    ("I called two weeks ago.", "two weeks ago", ""),
    ("Every Friday we swim.", "Every Friday", ""),
    ("Let us talk next Thurs about it.", "next Thurs", ""),
    ("Music of the 1990s rocks.", "the 1990s", ""),
]


def test_every_date_pattern_has_an_example() -> None:
    assert len(DATES) == len(ABSOLUTE_DATES) + len(CONTEXT_DATES) + len(RELATIVE_DATES)


@pytest.mark.parametrize(("text", "value", "iso"), DATES)
def test_each_date_pattern_still_matches(text: str, value: str, iso: str) -> None:
    dates = [(e.value, e.normalized) for e in EXTRACT.extract(text) if e.entity_type == "date"]
    assert dates == [(value, iso)]


@pytest.mark.parametrize(
    ("text", "products"),
    [
        ("My new MacBook Air M2 and a Pixel 8.", ["macbook air m2", "pixel 8"]),
        ("DALL-E drew it, then I drove the F-150.", ["dall-e", "f-150"]),
        ("She asked Alexa and Siri.", ["alexa", "siri"]),
        # The regex matches "İ" as "i"; lower() makes it "i" + a combining dot, a word break.
        ("My \u0130phone 15 broke.", ["i\u0307phone 15"]),
        ("I read it on my \u212aindle.", ["kindle"]),
        ("Nothing here mentions a device.", []),
    ],
)
def test_products_are_found_past_the_word_check(text: str, products: list[str]) -> None:
    found = [e.normalized for e in EXTRACT.extract(text) if e.entity_type == "product"]
    assert found == products
