"""Key secrets: the entropy estimate of a configured key and the entropy of generated ones."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from dakera_server.engine.keys.rules import generate_root_secret, generate_secret, key_entropy_bits


@given(st.text(alphabet="0123456789abcdef", min_size=1, max_size=200))
def test_entropy_of_hex_keys_is_four_bits_a_character(body: str) -> None:
    assert key_entropy_bits(body) == 4 * len(body)
    assert key_entropy_bits("dk_" + body) == 4 * len(body)


@given(st.binary(min_size=1, max_size=100))
def test_entropy_of_base64_keys_is_six_bits_a_character(raw: bytes) -> None:
    encoded = base64.urlsafe_b64encode(raw).decode()
    if any(c not in "0123456789abcdefABCDEF" for c in encoded):
        assert key_entropy_bits(encoded) == 6 * len(encoded.rstrip("="))


def test_generated_keys_have_the_documented_entropy() -> None:
    root, app = generate_root_secret(), generate_secret()
    assert len(root) == 3 + 64 and key_entropy_bits(root) == 256
    assert len(app) == 3 + 32 and key_entropy_bits(app) == 128
    assert key_entropy_bits("correct horse battery staple!") < 256
    assert key_entropy_bits("") == 0
