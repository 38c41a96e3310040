"""Server CPU per request of uvicorn's two HTTP/1.1 implementations, h11 and httptools.

    .venv/bin/python bench/protocol.py                  # 5 rounds x 4 s per row
    .venv/bin/python bench/protocol.py --rounds 3 --seconds 3

Each row is a real uvicorn process serving either the full dakera app (``create_app``, rate
limits off, gRPC off) or a bare ASGI app that answers ``{}`` (the floor: sockets, event loop
and protocol only), over ``h11`` (pure Python) or ``httptools`` (C). One client
(``bench/loadclient.py``) sends sequential requests on a keep-alive connection; the cost is
the server process's CPU time (``/proc``) over the answers it gave. Rounds are interleaved so
the machine's other load hits every row alike; the median round is printed with the load
average. This decided ``cli.HTTP_PROTOCOL`` (docs/benchmarks.md, "Request path").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import KEY, Server, load1, run_phase  # noqa: E402

RUNNER = """
import sys, uvicorn
from dakera_server.app import create_app
from dakera_server.config import Settings

async def bare(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})

settings = Settings.from_env()
app = bare if sys.argv[2] == "bare" else create_app(settings)
uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="warning",
            access_log=False, loop="uvloop", http=sys.argv[1])
"""


class UvicornServer(Server):
    """One uvicorn process: ``label`` is ``<app>/<protocol>``."""

    def start(self) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        app, protocol = self.label.split("/")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
        environ.update(
            {
                "DAKERA_PORT": str(self.port),
                "DAKERA_DATA_DIR": str(self.data_dir),
                "DAKERA_ROOT_API_KEY": KEY,
                "DAKERA_GRPC_ENABLED": "false",
                "RATE_LIMIT_RPS": "0",
            }
        )
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-c", RUNNER, protocol, app],
                env=environ,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if asyncio.run(self._probe(app)):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.label} did not start:\n{self.log.read_text()[-2000:]}")

    async def _probe(self, app: str) -> bool:
        from bench.loadclient import Connection

        conn = Connection("127.0.0.1", self.port, {})
        try:
            path = "/" if app == "bare" else "/health/ready"
            return (await conn.request("GET", path)).status == 200
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    rows = [
        ("bare", "/", "bare"),
        ("dakera", "/health", "health"),
        ("dakera", "/v1/auth/whoami", "whoami"),
    ]
    cpu: dict[tuple[str, str, str], list[float]] = {}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dakera-protocol-") as tmp:
        servers = {
            (app, proto): UvicornServer(
                f"{app}/{proto}", None, {}, Path(tmp) / f"{app}-{proto}", Path(tmp) / "log"
            )
            for app in ("bare", "dakera")
            for proto in ("h11", "httptools")
        }
        try:
            for server in servers.values():
                server.start()
            for round_number in range(args.rounds):
                order = ("h11", "httptools") if round_number % 2 == 0 else ("httptools", "h11")
                for app, path, kind in rows:
                    for proto in order:
                        server = servers[(app, proto)]
                        loads.append(load1())
                        kind_of_app = kind if app == "dakera" else "bare"
                        phase = asyncio.run(
                            run_phase(server, kind_of_app, 1, args.seconds, 0.5, 1, 0.1, 0)
                        )
                        value = phase.cpu_ms()
                        if value is not None:
                            cpu.setdefault((app, path, proto), []).append(1000.0 * value)
        finally:
            for server in servers.values():
                server.stop()
    print(
        f"\nServer CPU per request, microseconds (median of {args.rounds} rounds x "
        f"{args.seconds:g} s; load average {min(loads):.1f}-{max(loads):.1f}):\n"
    )
    print("| app | request | h11 | httptools | httptools saves |")
    print("|---|---|---:|---:|---:|")
    for app, path, _ in rows:
        h11 = statistics.median(cpu[(app, path, "h11")])
        fast = statistics.median(cpu[(app, path, "httptools")])
        print(f"| {app} | GET {path} | {h11:.0f} | {fast:.0f} | {h11 - fast:.0f} |")


if __name__ == "__main__":
    main()
