"""The sealed stream: any plaintext round-trips in any chunking; any change to what is stored
(a flipped bit, records reordered, dropped or cut off, another attachment's identity) fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.attachments.sealing import (
    LENGTH,
    PLAIN_BYTES,
    StreamSealer,
    new_data_key,
    unseal,
)
from dakera_server.errors import StorageError

KEY = new_data_key()


def seal(data: bytes, pieces: list[int], identity: str = "ns/blob") -> bytes:
    sealer = StreamSealer(KEY, identity)
    out = bytearray()
    start = 0
    for size in pieces:
        out += sealer.feed(data[start : start + size])
        start += size
    out += sealer.feed(data[start:])
    return bytes(out + sealer.finish())


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@settings(max_examples=40, deadline=None)
@given(
    st.binary(max_size=3 * PLAIN_BYTES + 7),
    st.lists(st.integers(1, 100_000), max_size=5),
    st.integers(1, 70_000),
)
def test_any_plaintext_round_trips(data: bytes, pieces: list[int], read_size: int) -> None:
    sealed = seal(data, pieces)
    assert b"".join(unseal(KEY, "ns/blob", chunks(sealed, read_size))) == data


def test_the_stored_form_hides_the_plaintext() -> None:
    data = b"top secret " * 20_000
    assert b"secret" not in seal(data, [])


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**9))
def test_a_flipped_bit_anywhere_fails(position: int) -> None:
    sealed = bytearray(seal(b"x" * (PLAIN_BYTES + 500), []))
    index = position % len(sealed)
    sealed[index] ^= 1 << (position % 8)
    with pytest.raises(StorageError):
        b"".join(unseal(KEY, "ns/blob", [bytes(sealed)]))


def records(sealed: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(sealed):
        (size,) = LENGTH.unpack_from(sealed, at)
        out.append(sealed[at : at + LENGTH.size + size])
        at += LENGTH.size + size
    return out


def test_reordered_dropped_or_truncated_records_fail() -> None:
    parts = records(seal(bytes(range(256)) * 1000, []))
    assert len(parts) == 4
    for tampered in (
        parts[1] + parts[0] + parts[2] + parts[3],  # reordered
        parts[0] + parts[2] + parts[3],  # one dropped
        b"".join(parts[:3]),  # cut off before the last record
        b"".join(parts) + parts[3],  # a record after the last
    ):
        with pytest.raises(StorageError):
            b"".join(unseal(KEY, "ns/blob", [tampered]))


def test_a_stream_opens_only_as_its_own_attachment() -> None:
    sealed = seal(b"mine", [])
    with pytest.raises(StorageError):
        b"".join(unseal(KEY, "ns/other-blob", [sealed]))
    with pytest.raises(StorageError):
        b"".join(unseal(new_data_key(), "ns/blob", [sealed]))
