"""The benchmark scripts run as ``python bench/<name>.py``, which puts ``bench/`` first on
``sys.path``: a script named like a module the server imports (``mcp``, ``grpc``, a stdlib
module) would be imported in its place and break every bench that starts the app."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_no_bench_script_shadows_an_importable_module() -> None:
    names = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__")
    shadowing = [
        name
        for name in names
        if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None
    ]
    assert shadowing == []
