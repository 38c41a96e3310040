"""Generates the Python code of ``vectors.proto`` into ``generated/`` (run at install time).

``setup.py``'s ``build_py`` hook calls ``generate``, so ``pip install`` (editable or not)
produces ``generated/vectors_pb2.py`` and ``generated/vectors_pb2_grpc.py`` with the
``grpcio-tools`` the build requires; the generated files are not committed. ``ensure`` does the
same at start-up for a source tree that was never installed, when ``grpcio-tools`` is there.

protoc writes ``import vectors_pb2`` (a top-level import); it is rewritten to a relative one so
the generated modules live inside this package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["GENERATED", "PROTO", "ensure", "generate"]

HERE = Path(__file__).resolve().parent
PROTO = HERE / "vectors.proto"
GENERATED = HERE / "generated"
MODULES = ("vectors_pb2.py", "vectors_pb2_grpc.py")


def generate(out_dir: Path = GENERATED) -> list[Path]:
    """Run protoc on ``vectors.proto`` into ``out_dir``; returns the files written."""
    from grpc_tools import protoc  # type: ignore[import-untyped]  # build-time dependency only

    out_dir.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).resolve().parent / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO.parent}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(PROTO),
        ]
    )
    if status != 0:
        raise RuntimeError(f"protoc failed on {PROTO.name} (exit status {status})")
    stub = out_dir / "vectors_pb2_grpc.py"
    stub.write_text(
        stub.read_text().replace("import vectors_pb2 as", "from . import vectors_pb2 as")
    )
    init = out_dir / "__init__.py"
    init.write_text('"""Generated from vectors.proto at install time; do not edit."""\n')
    return [init, *(out_dir / name for name in MODULES)]


def ensure() -> None:
    """Generate the code if it is missing or older than the proto (source checkouts)."""
    files = [GENERATED / name for name in MODULES]
    fresh = all(f.exists() and f.stat().st_mtime >= PROTO.stat().st_mtime for f in files)
    if fresh:
        return
    if importlib.util.find_spec("grpc_tools") is None:
        raise RuntimeError(
            "the gRPC code is generated at install time: reinstall the package "
            "(pip install -e .) or set DAKERA_GRPC_ENABLED=false"
        )
    generate()
