"""Build hook: generate the gRPC code of ``vectors.proto`` whenever the package is built.

Everything else about the package is declared in ``pyproject.toml``. The generator is loaded by
path so the build needs only ``grpcio-tools`` (a build requirement), not the package's runtime
dependencies.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CODEGEN = Path(__file__).resolve().parent / "src" / "dakera_server" / "grpc" / "codegen.py"
GENERATED_PACKAGE = "dakera_server.grpc.generated"


class BuildPyWithGrpc(build_py):
    """``build_py`` that first writes ``dakera_server/grpc/generated/``."""

    def run(self) -> None:
        spec = importlib.util.spec_from_file_location("dakera_grpc_codegen", CODEGEN)
        assert spec is not None and spec.loader is not None
        codegen = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(codegen)
        codegen.generate()
        if self.packages is not None and GENERATED_PACKAGE not in self.packages:
            self.packages.append(GENERATED_PACKAGE)
        super().run()


setup(cmdclass={"build_py": BuildPyWithGrpc})
