"""The built-in rule extractor on realistic sentences: what it finds, and what it must not."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.entities.extractor import (
    BUILTIN_EXTRACTOR,
    RuleExtractor,
    normalize_entity_type,
    normalize_entity_types,
)

EXTRACTOR = RuleExtractor()


def found(text: str, types: list[str] | None = None) -> set[tuple[str, str]]:
    return {(e.entity_type, e.value) for e in EXTRACTOR.extract(text, types)}


def test_the_contract_sentence() -> None:
    text = "OpenAI released GPT-4 in San Francisco on March 14, 2023"
    assert found(text) == {
        ("org", "OpenAI"),
        ("product", "GPT-4"),
        ("location", "San Francisco"),
        ("date", "March 14, 2023"),
    }
    for entity in EXTRACTOR.extract(text):
        assert entity.extractor == BUILTIN_EXTRACTOR
        assert 0.0 < entity.score < 1.0
        assert text[entity.start : entity.end] == entity.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Caroline: Hey Mel! Good to see you! How have you been?",
            {("person", "Caroline"), ("person", "Mel")},
        ),
        (
            "Melanie: I went to a LGBTQ support group yesterday and it was so powerful.",
            {("person", "Melanie"), ("date", "yesterday")},
        ),
        (
            "Jon: Hey Gina, hope you're doing great! Took a short trip last week to Rome.",
            {("person", "Jon"), ("person", "Gina"), ("date", "last week"), ("location", "Rome")},
        ),
        (
            "Nate: I took my turtles to the beach in Tampa yesterday!",
            {("person", "Nate"), ("location", "Tampa"), ("date", "yesterday")},
        ),
        (
            "Caroline: This necklace is a gift from my grandma in my home country, Sweden.",
            {("person", "Caroline"), ("location", "Sweden")},
        ),
        (
            "Tim: Last week I went to a Harry Potter conference in the UK - it was incredible!",
            {
                ("person", "Tim"),
                ("date", "Last week"),
                ("person", "Harry Potter"),
                ("location", "UK"),
            },
        ),
    ],
)
def test_locomo_style_chat_turns(text: str, expected: set[tuple[str, str]]) -> None:
    assert found(text) == expected


def test_people_places_organisations_and_dates() -> None:
    text = (
        "Dr. Gina Lopez visited the Golden Gate Bridge on 8 May, 2023. Lopez said it was windy. "
        "She studied at Stanford University and later joined the University of Oxford."
    )
    assert found(text) == {
        ("person", "Gina Lopez"),
        ("location", "Golden Gate Bridge"),
        ("date", "8 May, 2023"),
        ("person", "Lopez"),
        ("org", "Stanford University"),
        ("org", "University of Oxford"),
    }


def test_products_with_model_designations() -> None:
    text = "I bought an iPhone 15 Pro and a MacBook Air; my old Pixel 8 still runs Windows 11."
    assert {v for k, v in found(text) if k == "product"} == {
        "iPhone 15 Pro",
        "MacBook Air",
        "Pixel 8",
        "Windows 11",
    }


def test_urls_and_emails_are_exact() -> None:
    text = "Email me at jon.smith@example.com or see https://example.com/docs."
    assert found(text) == {("email", "jon.smith@example.com"), ("url", "https://example.com/docs")}


@pytest.mark.parametrize(
    "text",
    [
        "Thanks! I really appreciate it. Let's grab coffee sometime.",
        "Will you come? Hope so. This may be wrong.",
        "Wow, that's awesome! What's your best camping memory?",
        "Nice! Good luck with everything, see you soon.",
        "COVID-19 changed how we work.",
    ],
)
def test_ordinary_sentences_have_no_entities(text: str) -> None:
    assert found(text) == set()


def test_same_day_in_two_spellings_links_by_iso_date() -> None:
    first = EXTRACTOR.extract("We met on March 14, 2023.")
    second = EXTRACTOR.extract("The launch was 14 March 2023.")
    assert first[0].key == second[0].key == "date:2023-03-14"
    relative = EXTRACTOR.extract("I saw her yesterday.")
    assert relative[0].key is None  # "yesterday" is a different day in every memory


def test_type_filter_and_aliases() -> None:
    text = "OpenAI released GPT-4 in San Francisco on March 14, 2023"
    assert found(text, ["ORGANIZATION", "gpe"]) == {
        ("org", "OpenAI"),
        ("location", "San Francisco"),
    }
    assert normalize_entity_type("PERSON") == "person"
    assert normalize_entity_type("weather") is None
    assert normalize_entity_types(["weather"]) == normalize_entity_types(None)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_spans_that_match_their_values(text: str) -> None:
    for entity in EXTRACTOR.extract(text):
        assert text[entity.start : entity.end] == entity.value
        assert entity.value.strip() == entity.value and entity.value


WORDS = st.sampled_from(
    ["Caroline", "met", "Mel", "in", "Paris", "on", "March", "3,", "2021", "and", "OpenAI", "the",
     "Golden", "Gate", "Bridge", "yesterday", "with", "Dr.", "Lopez", "iPhone", "15", ".", "!"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, max_size=30))
def test_word_salad_never_breaks_the_extractor(words: list[str]) -> None:
    text = " ".join(words)
    entities = EXTRACTOR.extract(text)
    spans = sorted((e.start, e.end) for e in entities)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, "entity spans never overlap"
