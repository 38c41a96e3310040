"""Command line: ``dakera-server serve`` (more subcommands come with their features)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from dakera_server import API_VERSION, __version__
from dakera_server.config import Settings
from dakera_server.errors import ConfigError

__all__ = ["main"]


def _serve(settings: Settings) -> int:
    import uvicorn

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
    if not settings.auth_enabled:
        logging.getLogger("dakera_server").warning(
            "AUTHENTICATION IS DISABLED (DAKERA_AUTH_ENABLED=false): every caller is a "
            "super_admin; only local Host headers%s are served.",
            f" and {', '.join(settings.allowed_hosts)}" if settings.allowed_hosts else "",
        )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
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
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            return _serve(settings)
    except ConfigError as exc:
        print(f"dakera-server: configuration error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
