"""Only the config package reads the environment.

Which way imports point (app → api/grpc → security → engine → storage, engine domains in their
order, no circles, no web framework below the request layers) is checked by import-linter
against ``.importlinter`` in ``make lint``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "dakera_server"


def test_only_config_reads_the_environment() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "config" or "generated" in path.parts:
            continue
        text = path.read_text()
        assert "os.environ" not in text and "os.getenv" not in text, path
