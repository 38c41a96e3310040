"""Assemble the final image's root file system: the Python runtime, the venv, nothing else.

    python3 collect_rootfs.py ROOTFS VENV

Run in the Dockerfile's ``rootfs`` stage with the base image's own interpreter. It copies, at
their original paths: the interpreter the venv points to, its standard library (without tests,
tkinter, idle, ensurepip and other build-only parts), the venv (without pip, setuptools and
wheel: no package manager in the final image), and every shared library that the interpreter
and each extension module load, as ``ldd`` resolves them (symlink chains and merged-/usr links
kept). It writes ``/etc/passwd`` and ``/etc/group`` with root and ``dakera`` (1000:1000), the CA
bundle, and ``/data`` owned by 1000. Bytecode is compiled ahead (``unchecked-hash``), because
the root file system is read-only at run time.

What it does not copy is the point: no ``/bin/sh``, no coreutils, no apt/dpkg, no compiler.
"""

from __future__ import annotations

import compileall
import os
import py_compile
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

STDLIB_SKIP = {
    "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
    "__pycache__", "site-packages", "dist-packages", "distutils", "venv",
}  # fmt: skip
VENV_SKIP = re.compile(r"^(pip|setuptools|wheel|_distutils_hack)([-_.].*)?$|^distutils-precedence")
LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")
ELF_MAGIC = b"\x7fELF"
DAKERA_UID = 1000


def ensure_parent(root: Path, path: Path) -> None:
    """Create ``path``'s ancestors under ``root``, recreating symlinked ones (``/lib``)."""
    current = Path("/")
    for part in path.parent.parts[1:]:
        current = current / part
        target = root / current.relative_to("/")
        if current.is_symlink():
            if not target.is_symlink() and not target.exists():
                target.symlink_to(os.readlink(current))
            current = current.resolve()
            ensure_parent(root, current / "x")
        elif not target.exists():
            target.mkdir(mode=0o755)


def copy_path(root: Path, path: Path) -> None:
    """Copy one file (following and recreating its symlink chain) to the same path in root."""
    path = Path(os.path.normpath(path))
    ensure_parent(root, path)
    real_parent = path.parent.resolve()
    source = real_parent / path.name
    target = root / source.relative_to("/")
    ensure_parent(root, source)
    if source.is_symlink():
        link = os.readlink(source)
        if not target.is_symlink():
            target.symlink_to(link)
        copy_path(root, source.parent / link)
    elif not target.exists():
        shutil.copy2(source, target)


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def libraries_of(path: Path) -> set[Path]:
    """The shared libraries ``path`` loads, as the dynamic loader resolves them."""
    found = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    return {Path(m.group(1)) for m in LDD_LINE.finditer(found.stdout)}


def copy_tree(source: Path, target: Path, skip: re.Pattern[str] | set[str]) -> None:
    def ignore(_directory: str, names: list[str]) -> set[str]:
        if isinstance(skip, set):
            return {n for n in names if n in skip}
        return {n for n in names if skip.match(n)}

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, symlinks=True, ignore=ignore, dirs_exist_ok=True)


def main() -> None:
    root, venv = Path(sys.argv[1]), Path(sys.argv[2])
    root.mkdir(parents=True, exist_ok=True)
    copy_tree(venv, root / venv.relative_to("/"), VENV_SKIP)
    # The interpreter: the venv's python symlink chain down to the real binary.
    copy_path(root, venv / "bin" / "python")
    interpreter = (venv / "bin" / "python").resolve()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    copy_tree(stdlib, root / stdlib.relative_to("/"), STDLIB_SKIP)
    for config in stdlib.glob("config-*"):  # static libpython and Makefile: build-only
        shutil.rmtree(root / config.relative_to("/"), ignore_errors=True)
    for script in (root / venv.relative_to("/") / "bin").iterdir():
        if script.name.startswith(("pip", "activate", "Activate")):
            script.unlink()
    # Shared libraries of the interpreter and of every extension module.
    elves = [interpreter] + [p for p in root.rglob("*.so*") if p.is_file() and is_elf(p)]
    wanted: set[Path] = set()
    for elf in elves:
        source = Path("/") / elf.relative_to(root) if elf.is_relative_to(root) else elf
        wanted |= libraries_of(source)
    for library in sorted(wanted):
        copy_path(root, library)
    # Users, groups, CA bundle, the data directory.
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/nonexistent\ndakera:x:1000:1000:dakera:/data:/nonexistent\n"
    )
    (etc / "group").write_text("root:x:0:\ndakera:x:1000:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.exists():
        copy_path(root, bundle)
    for empty in ("tmp", "data"):
        (root / empty).mkdir(exist_ok=True)
    os.chown(root / "data", DAKERA_UID, DAKERA_UID)
    (root / "data").chmod(0o700)
    (root / "tmp").chmod(0o1777)
    # Bytecode ahead of time: nothing can write __pycache__ on a read-only root.
    for tree in (root / stdlib.relative_to("/"), root / venv.relative_to("/")):
        compileall.compile_dir(
            tree,
            quiet=2,
            workers=0,
            stripdir=str(root),
            prependdir="/",
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )


if __name__ == "__main__":
    main()
