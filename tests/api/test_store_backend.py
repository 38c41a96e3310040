"""The shared SDK-suite server runs on the backend ``--store-backend`` selects (make test runs the
data suites on both), so a green PostgreSQL pass really exercised PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer


def test_the_shared_server_runs_on_the_selected_store(
    server: RunningServer, request: pytest.FixtureRequest
) -> None:
    selected = request.config.getoption("--store-backend")
    described = server.engine.store.describe()
    assert described.startswith("postgresql" if selected == "postgres" else "sqlite"), described
    assert (server.engine.store.change_log is not None) == (selected == "postgres")
