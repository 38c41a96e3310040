"""Command line: ``dakera-server serve | keys create|list|revoke|rotate | health | doctor | mcp``,
and ``backup create|list|restore|verify``, ``export``, ``import`` (``cli_data.py``).

The ``keys`` commands work directly on the server's store (``DAKERA_DATA_DIR``'s SQLite file, or
the PostgreSQL database of ``DAKERA_STORAGE_URL``), for operators (a lost root key, a key created
before the server is reachable). A running server sees their changes without a restart: a new
key on its first use, a revocation within a few seconds. ``health`` is the container's health
check (no shell in the image, so the check is this program); ``doctor`` runs the production
checklist (``security/doctor/checks.py``, commands in ``cli_checks.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dakera_server import API_VERSION, __version__, cli_data
from dakera_server.cli_checks import add_check_parsers, run_check
from dakera_server.config import Settings
from dakera_server.errors import ConfigError, Unavailable

__all__ = ["main"]

GRACEFUL_SHUTDOWN_SECONDS = 5
# httptools (C) rather than h11 (pure Python): ~0.1-0.2 ms less CPU per request
# (bench/protocol.py). It lower-cases header names on the wire, except the CasedName ones
# the SDK reads case-sensitively (security/headercase.py).
HTTP_PROTOCOL = "httptools"


def _serve(settings: Settings) -> int:
    import uvicorn

    if settings.refuse_root and os.geteuid() == 0:
        raise ConfigError(
            "refusing to start as root (UID 0) because DAKERA_REFUSE_ROOT is on (the container "
            "image sets it): run the image as UID 1000 (docker run --user 1000:1000, Kubernetes "
            "runAsUser: 1000), or unset DAKERA_REFUSE_ROOT outside the image."
        )

    from dakera_server.app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    keyring = app.state.keyring
    if keyring.generated_root_key is not None:
        # Printed once, never logged or stored: only its hash is kept in the data directory.
        print(
            "\n  No DAKERA_ROOT_API_KEY was set, so a root key was generated (shown only now):\n\n"
            f"    {keyring.generated_root_key}\n\n"
            "  Use it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>', e.g.\n"
            f"    DakeraClient('http://{settings.host}:{settings.port}', api_key='<key>')\n",
            file=sys.stderr,
            flush=True,
        )
    if settings.auth_enabled and keyring.root_key_is_short:
        logging.getLogger("dakera_server").warning(
            "DAKERA_ROOT_API_KEY carries less than the 256 bits of entropy the production "
            "checklist requires for the root key (64 hex or 43 base64 characters); make one "
            "with: DAKERA_ROOT_API_KEY=$(openssl rand -hex 32)"
        )
    if not settings.auth_enabled:
        logging.getLogger("dakera_server").warning(
            "AUTHENTICATION IS DISABLED (DAKERA_AUTH_ENABLED=false): every caller is a "
            "super_admin; only local Host headers%s are served.",
            f" and {', '.join(settings.allowed_hosts)}" if settings.allowed_hosts else "",
        )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        # Forwarded headers are believed only from DAKERA_TRUSTED_PROXIES, by the app's own
        # layer (security/proxy.py); uvicorn's would trust 127.0.0.1 whatever the settings say.
        proxy_headers=False,
        http=HTTP_PROTOCOL,
        # Event streams (SSE) never end by themselves: without a bound, SIGTERM would wait for
        # every subscriber to hang up. After this many seconds they are cancelled, and the
        # lifespan still runs (the audit log drains).
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    # POST /ops/shutdown: the same graceful path as SIGTERM (drain, then the lifespan shutdown).
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)
    server.run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dakera-server``."""
    parser = argparse.ArgumentParser(
        prog="dakera-server",
        description=f"Dakera memory server {__version__} (wire version {API_VERSION}). "
        "Configured by environment variables; see the README.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="start the REST API server")
    _add_keys_parser(commands)
    cli_data.add_parsers(commands)
    add_check_parsers(commands)
    _add_mcp_parser(commands)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            return _serve(settings)
        if args.command == "keys":
            return _keys(settings, args)
        if args.command in ("backup", "export", "import"):
            return cli_data.run(settings, args)
        if args.command in ("health", "doctor"):
            return run_check(settings, args)
        if args.command == "mcp":
            return _mcp(settings, args)
    except ConfigError as exc:
        print(f"dakera-server: configuration error: {exc}", file=sys.stderr)
        return 2
    except Unavailable as exc:  # the store cannot be reached at start-up (PostgreSQL down)
        print(f"dakera-server: cannot start: {exc.message}", file=sys.stderr)
        return 3
    return 1


def _add_keys_parser(commands: Any) -> None:
    keys = commands.add_parser(
        "keys",
        help="manage API keys in DAKERA_DATA_DIR (works with the server stopped or running)",
    )
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--name", required=True, help="a label, at most 128 characters")
    create.add_argument("--scope", required=True, choices=["read", "write", "admin", "super_admin"])
    create.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="restrict the key to this namespace or 'prefix*' pattern (repeatable); "
        "omitted = every namespace",
    )
    create.add_argument("--expires-in-days", type=int, default=None)
    create.add_argument("--json", action="store_true", help="print the answer as JSON")
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print the keys as JSON")
    revoke = actions.add_parser("revoke", help="deactivate a key (or delete it with --delete)")
    revoke.add_argument("key_id")
    revoke.add_argument("--delete", action="store_true", help="remove the key entirely")
    rotate = actions.add_parser("rotate", help="replace a key's secret; prints the new one once")
    rotate.add_argument("key_id")
    rotate.add_argument(
        "--grace-secs", type=int, default=None, help="seconds the old secret keeps working"
    )
    rotate.add_argument("--json", action="store_true", help="print the answer as JSON")


def _add_mcp_parser(commands: Any) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="serve the Model Context Protocol on stdin/stdout, for MCP hosts that launch a "
        "command: a thin client of a running server (--url) or embedded (--data-dir)",
    )
    where = mcp.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="base URL of a running server, e.g. http://127.0.0.1:3300")
    where.add_argument(
        "--data-dir", help="serve this data directory in-process (no network listener)"
    )
    mcp.add_argument(
        "--api-key",
        help="the API key to act with (or DAKERA_MCP_API_KEY); with --data-dir, none means "
        "the local operator",
    )
    mcp.add_argument("--read-only", action="store_true", help="hide and refuse every write tool")
    mcp.add_argument(
        "--max-content-chars",
        type=int,
        default=None,
        help="characters of memory content shown per memory (default DAKERA_MCP_MAX_CONTENT_CHARS)",
    )


def _mcp(settings: Settings, args: argparse.Namespace) -> int:
    import anyio

    from dakera_server.mcp.server import Options
    from dakera_server.mcp.stdio import StdioError, run_embedded, run_remote
    from dakera_server.mcp.table import Limits

    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,  # standard output is the protocol's
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per tool call otherwise
    chars = args.max_content_chars or settings.mcp_max_content_chars
    if chars < 1:
        print("dakera-server mcp: --max-content-chars must be at least 1", file=sys.stderr)
        return 2
    options = Options(
        read_only=args.read_only or settings.mcp_read_only,
        limits=Limits(max_content_chars=chars),
    )
    api_key = args.api_key or settings.mcp_api_key
    try:
        if args.url:
            anyio.run(run_remote, args.url, api_key, options)
            return 0
        from dakera_server.app import create_app

        embedded = settings.replace(
            data_dir=Path(args.data_dir),
            grpc_enabled=False,  # no listener of any kind: the host talks over stdio only
            mcp_enabled=False,
            auth_enabled=settings.auth_enabled if api_key else False,
        )
        app = create_app(embedded)
        anyio.run(run_embedded, app, app.router.lifespan_context, api_key, options)
    except StdioError as exc:
        print(f"dakera-server mcp: {exc}", file=sys.stderr)
        return 2
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from dakera_server.engine.access import Caller, Scope
    from dakera_server.engine.keys.store import KeyStore
    from dakera_server.errors import DakeraError
    from dakera_server.security.encryption import open_codec
    from dakera_server.storage.factory import open_store

    # The operator at the data directory acts as an unrestricted super_admin.
    operator = Caller("cli", "command line", Scope.SUPER_ADMIN, None)
    # The server's store (SQLite in DAKERA_DATA_DIR, or DAKERA_STORAGE_URL) and codec: with
    # DAKERA_ENCRYPTION_KEY the key records are encrypted too.
    store = open_store(settings.storage_url, Path(settings.data_dir))
    try:
        codec = open_codec(store, settings.encryption_key, Path(settings.data_dir))
        if codec is not None:
            store.codec = codec
    except BaseException:
        store.close()
        raise
    try:
        keys = KeyStore(store)
        if args.action == "create":
            new = keys.create(
                operator,
                name=args.name,
                scope=args.scope,
                namespaces=args.namespaces,
                expires_in_days=args.expires_in_days,
            )
            answer: dict[str, Any] = {**new.record.to_wire(keys.now()), "key": new.secret}
            _print_secret(answer, "key", args.json)
        elif args.action == "list":
            found = [r.to_wire(keys.now()) for r in keys.list_keys(operator)]
            if args.json:
                print(json.dumps({"keys": found, "total": len(found)}, indent=2))
            for key in [] if args.json else found:
                grants = "all" if key["namespaces"] is None else ",".join(key["namespaces"])
                state = "active" if key["active"] and not key["expired"] else "inactive"
                print(f"{key['key_id']}  {key['scope']:<11} {state:<8} {grants:<24} {key['name']}")
        elif args.action == "revoke":
            if args.delete:
                keys.delete(operator, args.key_id)
                print(f"deleted {args.key_id}")
            else:
                keys.deactivate(operator, args.key_id)
                print(f"deactivated {args.key_id}")
        elif args.action == "rotate":
            new, old = keys.rotate(operator, args.key_id, args.grace_secs)
            answer = {
                **new.record.to_wire(keys.now()),
                "key": new.secret,
                "old_key_id": old.key_id,
                "old_key_expires_at": old.active_until,
            }
            _print_secret(answer, "key", args.json)
    except DakeraError as exc:
        print(f"dakera-server keys: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _print_secret(answer: dict[str, Any], field: str, as_json: bool) -> None:
    """Print a new key; its secret appears here once and is stored nowhere."""
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    grants = "every namespace" if answer["namespaces"] is None else ", ".join(answer["namespaces"])
    print(f"key_id:     {answer['key_id']}")
    print(f"name:       {answer['name']}")
    print(f"scope:      {answer['scope']}  ({grants})")
    if answer.get("old_key_id"):
        until = answer.get("old_key_expires_at")
        print(
            f"replaces:   {answer['old_key_id']} ("
            + (f"valid until {until})" if until else "deactivated)")
        )
    print(f"\n  secret (shown only now, store it safely):\n\n    {answer[field]}\n")


if __name__ == "__main__":
    sys.exit(main())
