"""Imports point one way: app → api/security/grpc → engine → storage; only config reads env."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "dakera_server"
WEB = ("fastapi", "starlette", "uvicorn", "grpc")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def test_engine_and_storage_never_import_web_frameworks() -> None:
    for path in modules("engine") + modules("storage"):
        for name in imports_of(path):
            assert not name.startswith(WEB), f"{path.name} imports {name}"


def test_storage_never_imports_engine_or_api() -> None:
    for path in modules("storage"):
        for name in imports_of(path):
            assert not name.startswith(("dakera_server.engine", "dakera_server.api")), path


def test_engine_never_imports_api_or_security() -> None:
    for path in modules("engine"):
        for name in imports_of(path):
            assert not name.startswith(("dakera_server.api", "dakera_server.security")), path


def test_only_config_reads_the_environment() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "config" or "generated" in path.parts:
            continue
        text = path.read_text()
        assert "os.environ" not in text and "os.getenv" not in text, path
