"""``dakera-server backup|export|import``: the portability commands of the command line.

Each runs the same engine code as the server's routes, either against a running server
(``--url``; the key from ``--api-key`` or ``DAKERA_ROOT_API_KEY``) or offline on
``DAKERA_DATA_DIR`` (no ``--url``; the server must be stopped: a restore replaces the store a
running server holds in memory). Long work shows a progress bar on stderr (rich) and ends with
a summary; ``export`` writes the file to stdout (or ``--output``) and nothing else there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dakera_server.config import Settings
from dakera_server.errors import DakeraError

__all__ = ["add_parsers", "run"]

ERR = Console(stderr=True)
POLL_SECONDS = 0.25
REMOTE_TIMEOUT = 600.0


def add_parsers(commands: Any) -> None:
    """The ``backup``, ``export`` and ``import`` sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="a running server (omit: work offline on DAKERA_DATA_DIR)")
    common.add_argument("--api-key", help="key for --url (default: DAKERA_ROOT_API_KEY)")
    common.add_argument("--json", action="store_true", help="print the answer as JSON")
    backup = commands.add_parser("backup", help="create, list, restore or verify backups")
    actions = backup.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[common], help="take a backup now (online)")
    create.add_argument("--name", default=None, help="a label (default: cli-<time>)")
    create.add_argument("--namespace", action="append", dest="namespaces", metavar="NS")
    create.add_argument("--compression", choices=["gzip", "none"], default=None)
    actions.add_parser("list", parents=[common], help="list completed backups")
    restore = actions.add_parser("restore", parents=[common], help="restore a backup")
    restore.add_argument("backup", help="a backup id, or (offline) a downloaded backup file")
    restore.add_argument("--target", action="append", dest="targets", metavar="NS")
    restore.add_argument("--overwrite", action="store_true", help="replace data already there")
    restore.add_argument("--dry-run", action="store_true", help="report, change nothing")
    verify = actions.add_parser("verify", parents=[common], help="check a backup's integrity")
    verify.add_argument("backup", help="a backup id, or (offline) a backup file")
    export = commands.add_parser("export", parents=[common], help="export an agent's memories")
    export.add_argument("--agent", required=True)
    export.add_argument("--format", default="jsonl", choices=["jsonl", "csv", "mem0", "zep"])
    export.add_argument("--output", "-o", default=None, help="file to write (default: stdout)")
    importing = commands.add_parser("import", parents=[common], help="import memories")
    importing.add_argument("file", help="jsonl, csv, mem0/zep JSON, or an OpenMemory zip")
    importing.add_argument("--agent", required=True)
    importing.add_argument("--format", default=None, help="jsonl|csv|mem0|zep|openmemory")
    importing.add_argument("--conflict", default=None, choices=["skip", "overwrite", "new_ids"])


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one portability command; 0 on success, 1 on a refused or failed operation."""
    try:
        if args.url:
            result = _Remote(args.url, args.api_key or settings.root_api_key).run(args)
        else:
            with _offline(settings) as engine:
                result = _Local(engine).run(args)
    except DakeraError as exc:
        ERR.print(f"[red]dakera-server {args.command}:[/red] {exc.message}")
        return 1
    if result is not None:
        if args.json and args.command != "export":
            print(json.dumps(result, indent=2))
        else:
            _summary(args, result)
    return 0


@contextmanager
def _offline(settings: Settings) -> Iterator[Any]:
    from dakera_server.app import build_engine

    with _spinner("opening the data directory"):
        engine = build_engine(settings)
        engine.load()
    try:
        yield engine
    finally:
        engine.close()


@contextmanager
def _spinner(label: str) -> Iterator[None]:
    with Progress(SpinnerColumn(), TextColumn(label), TimeElapsedColumn(), console=ERR) as bar:
        bar.add_task(label, total=None)
        yield


def _watch(label: str, poll: Callable[[], dict[str, Any]], done: Callable[[Any], bool]) -> Any:
    """Poll a job until ``done``, drawing its progress (``processed``/``total`` when known)."""
    columns = (SpinnerColumn(), TextColumn(label), BarColumn(), TextColumn("{task.completed}"))
    with Progress(*columns, TimeElapsedColumn(), console=ERR) as bar:
        task = bar.add_task(label, total=None)
        while True:
            state = poll()
            total = state.get("total")
            bar.update(task, total=total or None, completed=state.get("processed", 0))
            if done(state):
                return state
            time.sleep(POLL_SECONDS)


def _summary(args: argparse.Namespace, result: Any) -> None:
    if args.command == "backup" and args.action == "list":
        for item in result.get("backups", []):
            counts = ", ".join(f"{k} {v}" for k, v in sorted(item["counts"].items()))
            print(f"{item['backup_id']}  {item['created_at']}  {item['size_bytes']:>12} B  "
                  f"{item['name']}  ({counts})")  # fmt: skip
        return
    if args.command == "export":
        ERR.print(f"exported {result['count']} memories of {args.agent} as {args.format}")
        return
    lines = [f"{key}: {value}" for key, value in result.items() if not isinstance(value, dict)]
    lines += [
        f"{key}: " + json.dumps(value) for key, value in result.items() if isinstance(value, dict)
    ]
    ERR.print("\n".join(lines))


class _Local:
    """The commands on an engine opened over the data directory."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.portability = engine.portability

    def run(self, args: argparse.Namespace) -> Any:
        from dakera_server.engine.access import Caller, Scope

        operator = Caller("cli", "command line", Scope.SUPER_ADMIN, None)
        if args.command == "export":
            return _write_export(self._export(operator, args), args.output)
        if args.command == "import":
            from dakera_server.api.memories.portability import check_row

            data = Path(args.file).read_bytes()
            job = self.portability.imports.start(
                operator, args.agent, data, fmt=args.format, conflict=args.conflict,
                check_row=check_row, wait=True,
            )  # fmt: skip
            return job.to_wire()
        backups = self.portability.backups
        if args.action == "create":
            with _spinner("taking a backup"):
                name = args.name or f"cli-{int(time.time())}"
                return backups.create(name, namespaces=args.namespaces,
                                      compression=args.compression).to_wire()  # fmt: skip
        if args.action == "list":
            return {"backups": [r.to_wire() for r in backups.all()]}
        backup_id = self._listed(args.backup)
        if args.action == "verify":
            with _spinner("verifying"):
                verified = backups.verify(backup_id)
            return {
                "backup_id": backup_id,
                "valid": True,
                "sha256": verified.sha256,
                "format_version": verified.header.format_version,
                "counts": verified.counts,
            }
        with _spinner("restoring"):
            job = self.portability.restores.start(
                backup_id, target_namespaces=args.targets, overwrite=args.overwrite or None,
                dry_run=args.dry_run or None, wait=True,
            )  # fmt: skip
        return job.to_wire()

    def _export(self, operator: Any, args: argparse.Namespace) -> Any:
        from dakera_server.engine.portability.exports import export_memories

        export = export_memories(
            self.engine.memories, self.engine.events, operator, args.agent, args.format
        )
        return export.count, export.chunks

    def _listed(self, reference: str) -> str:
        """A backup id; a file path is first copied into the backups directory (verified)."""
        path = Path(reference)
        if not path.is_file():
            return reference
        backups = self.portability.backups

        def copy(out: IO[bytes]) -> None:
            with path.open("rb") as handle:
                while block := handle.read(1024 * 1024):
                    out.write(block)

        try:
            return str(backups.receive(copy).backup_id)
        except DakeraError as exc:
            if exc.code != "CONFLICT":
                raise
            with path.open("rb") as handle:
                from dakera_server.engine.portability.container import BackupReader

                return BackupReader(handle, backups.codec).header().backup_id


class _Remote:
    """The commands through a running server's HTTP API."""

    def __init__(self, url: str, key: str | None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=REMOTE_TIMEOUT)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise DakeraError(f"{response.status_code}: {message}")
        return response.json()

    def run(self, args: argparse.Namespace) -> Any:
        if args.command == "export":
            return self._export(args)
        if args.command == "import":
            return self._import(args)
        if args.action == "create":
            body: dict[str, Any] = {"name": args.name or f"cli-{int(time.time())}"}
            if args.namespaces:
                body["namespaces"] = args.namespaces
            if args.compression:
                body["compression"] = args.compression
            with _spinner("taking a backup"):
                return self.call("POST", "/v1/admin/backups", json=body)
        if args.action == "list":
            return self.call("GET", "/v1/admin/backups")
        if args.action == "verify":
            with _spinner("verifying"):
                return self.call("POST", f"/v1/admin/backups/{args.backup}/verify")
        body = {"backup_id": args.backup}
        if args.targets:
            body["target_namespaces"] = args.targets
        if args.overwrite:
            body["overwrite"] = True
        if args.dry_run:
            body["dry_run"] = True
        job = self.call("POST", "/v1/admin/backups/restore", json=body)
        path = f"/v1/admin/backups/restore/{job['restore_id']}"
        return _watch("restoring", lambda: self.call("GET", path),
                      lambda s: s["status"] != "running")  # fmt: skip

    def _export(self, args: argparse.Namespace) -> Any:
        params = {"agent_id": args.agent, "format": args.format}
        with self.http.stream("GET", "/v1/export", params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise DakeraError(f"{response.status_code}: {response.text}")
            count = int(response.headers.get("x-dakera-export-count", "0"))
            return _write_export((count, response.iter_bytes()), args.output)

    def _import(self, args: argparse.Namespace) -> Any:
        params = {"agent_id": args.agent}
        if args.format:
            params["format"] = args.format
        if args.conflict:
            params["conflict"] = args.conflict
        with open(args.file, "rb") as handle:
            files = {"file": (Path(args.file).name, handle, "application/octet-stream")}
            job = self.call("POST", "/v1/import", params=params, files=files)
        path = f"/v1/import/{job['job_id']}/status"
        return _watch("importing", lambda: self.call("GET", path),
                      lambda s: s["status"] != "running")  # fmt: skip


def _write_export(export: tuple[int, Iterator[bytes]], output: str | None) -> dict[str, Any]:
    count, chunks = export
    target = open(output, "wb") if output else sys.stdout.buffer
    try:
        for chunk in chunks:
            target.write(chunk)
        target.flush()
    finally:
        if output:
            target.close()
    return {"count": count}
