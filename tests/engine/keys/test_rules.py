"""Key secrets: the entropy estimate of a configured key and the entropy of generated ones."""

from __future__ import annotations

import base64

from hypothesis import assume, given
from hypothesis import strategies as st

from dakera_server.engine.keys.rules import generate_root_secret, generate_secret, key_entropy_bits


@given(st.binary(min_size=1, max_size=100))
def test_entropy_of_random_hex_keys_is_four_bits_a_character(raw: bytes) -> None:
    body = raw.hex()
    assume(len(set(body)) >= min(16, len(body)) / 4)  # not a pattern like "0000"
    assert key_entropy_bits(body) == 4 * len(body)
    assert key_entropy_bits("dk_" + body) == 4 * len(body)


@given(st.binary(min_size=12, max_size=100))
def test_entropy_of_random_base64_keys_is_six_bits_a_character(raw: bytes) -> None:
    encoded = base64.urlsafe_b64encode(raw).decode()
    assume(any(c not in "0123456789abcdefABCDEF" for c in encoded))
    assume(len(set(encoded)) >= 16)
    assert 5 * len(encoded) <= key_entropy_bits(encoded) <= 6 * len(encoded)


def test_patterned_keys_count_only_their_distinct_characters() -> None:
    assert key_entropy_bits("a" * 64) == 4
    assert key_entropy_bits("ab" * 32) == 8


def test_generated_keys_have_the_documented_entropy() -> None:
    root, app = generate_root_secret(), generate_secret()
    assert len(root) == 3 + 64 and key_entropy_bits(root) == 256
    assert len(app) == 3 + 32 and key_entropy_bits(app) == 128
    assert key_entropy_bits("correct horse battery staple!") < 256
    assert key_entropy_bits("") == 0
