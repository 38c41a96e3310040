"""``dakera-server health`` and ``dakera-server doctor``: checks an operator or a container runs.

``health`` asks the local server's ``/health/ready`` with the standard library only (it is the
image's ``HEALTHCHECK``, run every few seconds in an image without a shell or curl) and exits 0
when it answers 200. ``doctor`` judges a configuration against ``security.md``'s checklist
(``security/doctor/checks.py``): the settings of this environment plus the key store in
``DAKERA_DATA_DIR``, or, with ``--url``, a running server's own report (``GET
/v1/admin/doctor``, through the proxy the clients use). It prints a table (or ``--json``) and
exits 1 when a Required item fails.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from dakera_server.config import Settings

__all__ = ["add_check_parsers", "run_check"]

ANY_ADDRESS = ("0.0.0.0", "::", "")


def add_check_parsers(commands: Any) -> None:
    """The ``health`` and ``doctor`` sub-commands."""
    health = commands.add_parser(
        "health", help="exit 0 when the local server is ready (the image's health check)"
    )
    health.add_argument("--url", help="base URL (default: this configuration's host and port)")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    doctor = commands.add_parser(
        "doctor", help="check this configuration (or a running server) against the checklist"
    )
    doctor.add_argument("--url", help="check a running server through this URL instead")
    doctor.add_argument("--api-key", help="super_admin key for --url (default: the root key)")
    doctor.add_argument("--ca-cert", help="CA bundle that signs the --url server's certificate")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")


def run_check(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``health`` or ``doctor``; the exit code is the command's."""
    if args.command == "health":
        return _health(settings, args.url, args.timeout)
    return _doctor(settings, args)


def _local_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ANY_ADDRESS else settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _health(settings: Settings, url: str | None, timeout: float) -> int:
    target = (url or _local_url(settings)).rstrip("/") + "/health/ready"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as answer:  # noqa: S310 (our URL)
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"dakera-server health: {target}: {exc}", file=sys.stderr)
        return 1
    print(f"{target}: {status}")
    return 0 if status == 200 else 1


def _doctor(settings: Settings, args: argparse.Namespace) -> int:
    from dakera_server.security.doctor.checks import Report, examine, render_table

    if args.url:
        report = Report.from_wire(_remote_report(settings, args))
    else:
        report = examine(settings, _local_facts(settings))
    if args.json:
        print(json.dumps(report.to_wire(), indent=2))
    else:
        print(render_table(report))
    return 0 if report.passed else 1


def _remote_report(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    key = args.api_key or settings.root_api_key
    if not key:
        raise SystemExit("dakera-server doctor --url needs --api-key or DAKERA_ROOT_API_KEY")
    verify: Any = ssl.create_default_context(cafile=args.ca_cert) if args.ca_cert else True
    try:
        answer = httpx.get(
            args.url.rstrip("/") + "/v1/admin/doctor",
            headers={"Authorization": f"Bearer {key}"},
            verify=verify,
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        raise SystemExit(f"dakera-server doctor: {args.url}: {exc}") from None
    if answer.status_code != 200:
        raise SystemExit(f"dakera-server doctor: {args.url} answered {answer.status_code}")
    data: dict[str, Any] = answer.json()
    return data


def _local_facts(settings: Settings) -> Any:
    from dakera_server.engine.keys.store import KeyStore
    from dakera_server.security.doctor.facts import gather
    from dakera_server.security.encryption import open_codec
    from dakera_server.storage.factory import DB_FILE, open_store

    data_dir = Path(settings.data_dir)
    if settings.storage_url is None and not (data_dir / DB_FILE).exists():
        return gather(None)
    store = open_store(settings.storage_url, data_dir)
    try:
        codec = open_codec(store, settings.encryption_key, data_dir)
        if codec is not None:
            store.codec = codec
        return gather(KeyStore(store))
    finally:
        store.close()
