"""Where the store is, said without its password (storage/postgres/connect.py)."""

from __future__ import annotations

import pytest

from dakera_server.storage.postgres import describe_url


@pytest.mark.parametrize(
    ("url", "described"),
    [
        ("postgresql://u:pw@db.example:6543/app", "postgresql u@db.example:6543/app"),
        ("postgres://u:pw@db/app?sslmode=require", "postgresql u@db:5432/app"),
        ("postgresql://db.example/app", "postgresql db.example:5432/app"),
        ("postgresql:///app?host=/var/run/postgresql", "postgresql /var/run/postgresql:5432/app"),
        ("postgresql://u:pw@[::1]:5433/app", "postgresql u@::1:5433/app"),
        ("postgresql://u:p%40ss@db/app", "postgresql u@db:5432/app"),
    ],
)
def test_describe_url_names_the_server_never_the_password(url: str, described: str) -> None:
    assert describe_url(url) == described
    assert "pw" not in described.split("@")[0] and "p@ss" not in described


def test_an_unparsable_url_is_described_without_its_text() -> None:
    assert describe_url("postgresql://u:pw@db:notaport/x") in (
        "postgresql (unparsable URL)",
        "postgresql u@db:notaport/x",
    )
