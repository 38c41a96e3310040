"""Throughput under concurrent load (issue 21): requests/s, p50/p99 and server CPU per request.

    .venv/bin/python bench/load.py                          # this tree: 1, 4, 16, 64 clients
    .venv/bin/python bench/load.py --baseline main          # and main's code, side by side
    .venv/bin/python bench/load.py --baseline main --repeat 3 --quiet-below 2.0
    .venv/bin/python bench/load.py --variant nobatch:DAKERA_EMBEDDING_PASSES=0

Each server is a real ``dakera-server serve`` subprocess (rate limits off, a temporary data dir)
pre-filled with ``--agents`` agents of ``--memories`` memories each through the batch store
route. ``--baseline REF`` also starts the code of git ``REF`` (``git archive`` into a temporary
folder, run with ``PYTHONPATH`` over this venv), and every phase runs on both servers one after
the other (order alternating by repeat), so both see the same machine.

Phases, each ``--seconds`` long after a ``--warmup``:

* ``mixed`` at each of ``--clients``: closed-loop clients, each on its own keep-alive connection,
  70 % recall (``top_k`` 10) / 30 % single store, agent picked at random;
* ``recall`` and ``store`` alone at ``--cpu-clients`` (default 1 and 16): CPU per request of
  each kind (the issue's targets are per kind);
* ``trivial``: ``GET /health`` and ``GET /v1/auth/whoami`` from one client: CPU per request.

Server CPU is the utime + stime of the server process and every process under it
(``/proc/<pid>/stat``) over the phase, divided by the answers it gave; "server cores busy" is
that CPU time over the phase's wall time (2.0 = both cores of this machine all the time). The
load generator (``bench/loadclient.py``, raw asyncio) costs ~0.1 ms per request; its own CPU per
request is printed too. The machine's 1-minute load average is printed beside every row:
``--quiet-below L`` waits (up to ``--quiet-timeout`` s) for it to fall below ``L`` first.

A ``503``/``429`` answer is a deliberate refusal: the client waits ``Retry-After`` (capped at
``--backoff`` s) and goes on; it is counted, never as an error. Anything else non-2xx, or a
broken connection, is an error. At the end every server is killed with SIGKILL, restarted on
its data dir, and every store answered 2xx is read back: ``lost`` must be 0.

Prints markdown tables and ends with ``LOAD_SUMMARY {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadclient import Connection  # noqa: E402
from bench.textgen import memory_texts, queries  # noqa: E402

KEY = secrets.token_hex(32)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def load1() -> float:
    """The machine's 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and every process below it, in seconds."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        parent[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += ticks.get(current, 0)
        todo.extend(child for child, p in parent.items() if p == current)
    return total / CLK_TCK


def wait_quiet(below: float | None, timeout: float) -> None:
    if below is None:
        return
    deadline = time.monotonic() + timeout
    while load1() >= below and time.monotonic() < deadline:
        time.sleep(5)


# --------------------------------------------------------------------------- servers
@dataclass
class Server:
    """A spawned server: its label, data dir, process and port."""

    label: str
    pythonpath: str | None
    env: dict[str, str]
    data_dir: Path
    log: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    acknowledged: list[tuple[str, str]] = field(default_factory=list)

    def start(self) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
        if self.pythonpath:
            environ["PYTHONPATH"] = self.pythonpath
        environ.update(
            {
                "DAKERA_PORT": str(self.port),
                "DAKERA_DATA_DIR": str(self.data_dir),
                "DAKERA_ROOT_API_KEY": KEY,
                "DAKERA_GRPC_PORT": "0",
                "DAKERA_LOG_LEVEL": "warning",
                "RATE_LIMIT_RPS": "0",
                **self.env,
            }
        )
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dakera_server.cli", "serve"],
                env=environ,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.label} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if asyncio.run(self._ready()):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.label} did not become ready")

    async def _ready(self) -> bool:
        conn = Connection("127.0.0.1", self.port, {})
        try:
            return (await conn.request("GET", "/health/ready")).status == 200
        finally:
            await conn.close()

    def cpu(self) -> float:
        assert self.process is not None
        return tree_cpu_seconds(self.process.pid)

    def kill(self) -> None:
        """SIGKILL the whole process group (workers too), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def baseline_tree(ref: str, into: Path) -> str:
    """``git archive REF`` of this repository into ``into``; returns its ``src`` path."""
    archive = into / "baseline.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return str(into / "tree" / "src")


# --------------------------------------------------------------------------- load
HEADERS = {"Authorization": f"Bearer {KEY}"}


async def prefill(server: Server, agents: int, memories: int) -> None:
    conn = Connection("127.0.0.1", server.port, HEADERS)
    texts = memory_texts(agents * memories, seed=5)
    for a in range(agents):
        items = [{"content": t} for t in texts[a * memories : (a + 1) * memories]]
        body = orjson.dumps({"agent_id": f"agent-{a}", "memories": items})
        answer = await conn.request("POST", "/v1/memories/store/batch", body)
        if answer.status != 200:
            raise SystemExit(f"prefill failed: {answer.status} {answer.body[:300]!r}")
    await conn.close()


@dataclass
class Phase:
    """What one phase measured on one server."""

    server: str
    kind: str
    clients: int
    seconds: float
    load: float
    latencies: dict[str, list[float]]
    refused: int
    errors: dict[str, int]
    server_cpu: float
    client_cpu: float

    @property
    def answered(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def rps(self) -> float:
        return self.answered / self.seconds

    def pct(self, op: str, q: float) -> float | None:
        values = sorted(self.latencies.get(op, []))
        if not values:
            return None
        return 1000.0 * values[min(len(values) - 1, int(q * len(values)))]

    def cpu_ms(self) -> float | None:
        served = self.answered + self.refused
        return 1000.0 * self.server_cpu / served if served else None

    def row(self) -> dict[str, Any]:
        served = self.answered + self.refused
        return {
            "server": self.server,
            "phase": self.kind,
            "clients": self.clients,
            "load1": self.load,
            "rps": round(self.rps(), 1),
            "recall_p50": _r(self.pct("recall", 0.5)),
            "recall_p99": _r(self.pct("recall", 0.99)),
            "store_p50": _r(self.pct("store", 0.5)),
            "store_p99": _r(self.pct("store", 0.99)),
            "other_p50": _r(self.pct("other", 0.5)),
            "cpu_ms_per_req": _r(self.cpu_ms()),
            "server_cores": _r(self.server_cpu / self.seconds),
            "client_cpu_ms_per_req": _r(1000.0 * self.client_cpu / served if served else None),
            "refused": self.refused,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def _client(
    server: Server,
    mix: Sequence[tuple[str, float]],
    stop_at: float,
    measure_from: float,
    result: Phase,
    rng: random.Random,
    agents: int,
    backoff: float,
) -> None:
    conn = Connection("127.0.0.1", server.port, HEADERS)
    texts = queries(500, seed=rng.randrange(1 << 30))
    weights = [w for _, w in mix]
    ops = [o for o, _ in mix]
    serial = 0
    while (now := time.perf_counter()) < stop_at:
        op = rng.choices(ops, weights)[0]
        agent = f"agent-{rng.randrange(agents)}"
        if op == "recall":
            path = "/v1/memory/recall"
            body = orjson.dumps({"agent_id": agent, "query": rng.choice(texts), "top_k": 10})
        elif op == "store":
            serial += 1
            path = "/v1/memory/store"
            content = f"{rng.choice(texts)} Noted by client {id(conn)} as item {serial}."
            body = orjson.dumps({"agent_id": agent, "content": content, "importance": 0.6})
        else:
            path, body = op, None
        started = time.perf_counter()
        try:
            answer = await conn.request("GET" if body is None else "POST", path, body)
        except (OSError, asyncio.IncompleteReadError) as exc:
            result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
            await asyncio.sleep(0.05)
            continue
        took = time.perf_counter() - started
        counted = started >= measure_from
        if answer.status in (429, 503):
            if counted:
                result.refused += 1
            retry = answer.header("retry-after")
            await asyncio.sleep(min(backoff, float(retry) if retry else backoff))
            continue
        if answer.status >= 300:
            if counted:
                key = f"{op}:{answer.status}"
                result.errors[key] = result.errors.get(key, 0) + 1
            continue
        if op == "store":
            # Every acknowledged write is checked after a SIGKILL, counted or not.
            server.acknowledged.append((agent, orjson.loads(answer.body)["memory"]["id"]))
        if counted:
            result.latencies.setdefault(op if op in ("recall", "store") else "other", []).append(
                took
            )
    await conn.close()
    del now


async def run_phase(
    server: Server,
    kind: str,
    clients: int,
    seconds: float,
    warmup: float,
    agents: int,
    backoff: float,
    seed: int,
) -> Phase:
    mixes = {
        "mixed": [("recall", 0.7), ("store", 0.3)],
        "recall": [("recall", 1.0)],
        "store": [("store", 1.0)],
        "health": [("/health", 1.0)],
        "whoami": [("/v1/auth/whoami", 1.0)],
        "bare": [("/", 1.0)],
    }
    result = Phase(server.label, kind, clients, seconds, load1(), {}, 0, {}, 0.0, 0.0)
    begin = time.perf_counter()
    measure_from = begin + warmup
    stop_at = measure_from + seconds
    tasks = [
        asyncio.create_task(
            _client(
                server,
                mixes[kind],
                stop_at,
                measure_from,
                result,
                random.Random(seed * 1000 + i),
                agents,
                backoff,
            )
        )
        for i in range(clients)
    ]
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu0, client0 = server.cpu(), time.process_time()
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    cpu1, client1 = server.cpu(), time.process_time()
    await asyncio.gather(*tasks)
    result.server_cpu = cpu1 - cpu0
    result.client_cpu = client1 - client0
    return result


async def verify(server: Server) -> int:
    """Read back every acknowledged store; returns how many are missing."""
    missing = 0
    conns = [Connection("127.0.0.1", server.port, HEADERS) for _ in range(4)]
    todo = list(server.acknowledged)

    async def worker(conn: Connection) -> None:
        nonlocal missing
        while todo:
            agent, memory_id = todo.pop()
            answer = await conn.request("GET", f"/v1/memory/get/{memory_id}?agent_id={agent}")
            if answer.status != 200:
                missing += 1

    await asyncio.gather(*(worker(c) for c in conns))
    for conn in conns:
        await conn.close()
    return missing


# --------------------------------------------------------------------------- report
COLUMNS = [
    ("server", "server"),
    ("phase", "phase"),
    ("clients", "clients"),
    ("load1", "load avg"),
    ("rps", "req/s"),
    ("recall_p50", "recall p50 ms"),
    ("recall_p99", "recall p99 ms"),
    ("store_p50", "store p50 ms"),
    ("store_p99", "store p99 ms"),
    ("other_p50", "p50 ms"),
    ("cpu_ms_per_req", "server CPU ms/req"),
    ("server_cores", "server cores busy"),
    ("client_cpu_ms_per_req", "client CPU ms/req"),
    ("refused", "503/429"),
    ("errors", "errors"),
]


def table(rows: list[dict[str, Any]]) -> str:
    used = [(k, t) for k, t in COLUMNS if any(r.get(k) is not None for r in rows)]
    lines = ["| " + " | ".join(t for _, t in used) + " |"]
    lines.append(
        "|" + "|".join("---" if k in ("server", "phase") else "---:" for k, _ in used) + "|"
    )
    for row in rows:
        cells = ["" if row.get(k) is None else str(row[k]) for k, _ in used]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["server"], row["phase"], row["clients"]), []).append(row)
    out = []
    for (server, phase, clients), group in groups.items():
        merged: dict[str, Any] = {"server": server, "phase": phase, "clients": clients}
        for key, _ in COLUMNS[3:]:
            values = [r[key] for r in group if r.get(key) is not None]
            if values:
                merged[key] = round(statistics.median(values), 2)
        merged["errors"] = sum(r["errors"] for r in group)
        merged["refused"] = sum(r["refused"] for r in group)
        out.append(merged)
    return out


# --------------------------------------------------------------------------- main
def parse_env(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--cpu-clients", default="1,16", help="clients of the per-kind phases")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--memories", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--backoff", type=float, default=0.1)
    parser.add_argument("--baseline", help="git ref whose code runs side by side (e.g. main)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for this tree")
    parser.add_argument("--baseline-env", action="append", default=[], help="KEY=VALUE")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="LABEL:KEY=VALUE,KEY=VALUE: one more server of this tree with that environment",
    )
    parser.add_argument("--no-trivial", action="store_true", help="skip /health and whoami")
    parser.add_argument("--no-verify", action="store_true", help="skip the SIGKILL read-back")
    parser.add_argument("--quiet-below", type=float, default=None)
    parser.add_argument("--quiet-timeout", type=float, default=300.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    # SIGTERM ends the run through the ``finally`` below, so no server is left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    clients = [int(c) for c in args.clients.split(",") if c]
    cpu_clients = [int(c) for c in args.cpu_clients.split(",") if c]
    with tempfile.TemporaryDirectory(prefix="dakera-load-") as tmp:
        work = Path(tmp)
        servers = [Server("this", None, parse_env(args.env), work / "this", work / "this.log")]
        for variant in args.variant:
            label, _, pairs = variant.partition(":")
            env = {**parse_env(args.env), **parse_env([p for p in pairs.split(",") if p])}
            servers.append(Server(label, None, env, work / label, work / f"{label}.log"))
        if args.baseline:
            src = baseline_tree(args.baseline, work)
            servers.insert(
                0,
                Server(
                    args.baseline,
                    src,
                    parse_env(args.baseline_env),
                    work / "base",
                    work / "base.log",
                ),
            )
        rows: list[dict[str, Any]] = []
        try:
            for server in servers:
                server.start()
                asyncio.run(prefill(server, args.agents, args.memories))
                print(f"# {server.label}: ready on port {server.port}", file=sys.stderr)
            plan: list[tuple[str, int]] = [("mixed", c) for c in clients]
            plan += [(kind, c) for c in cpu_clients for kind in ("recall", "store")]
            if not args.no_trivial:
                plan += [("health", 1), ("whoami", 1)]
            for rep in range(args.repeat):
                for kind, count in plan:
                    wait_quiet(args.quiet_below, args.quiet_timeout)
                    order = servers if rep % 2 == 0 else servers[::-1]
                    for server in order:
                        phase = asyncio.run(
                            run_phase(
                                server,
                                kind,
                                count,
                                args.seconds,
                                args.warmup,
                                args.agents,
                                args.backoff,
                                seed=rep * 7 + count,
                            )
                        )
                        rows.append(phase.row())
                        print(table([rows[-1]]).splitlines()[-1], file=sys.stderr, flush=True)
            lost: dict[str, int] = {}
            if not args.no_verify:
                for server in servers:
                    server.kill()
                    server.start()
                    lost[server.label] = asyncio.run(verify(server))
        finally:
            for server in servers:
                server.stop()
    summary = medians(rows)
    print(f"\nAll rows ({args.repeat} repeat(s)):\n")
    print(table(rows))
    print("\nMedians over repeats:\n")
    print(table(summary))
    acknowledged = {s.label: len(s.acknowledged) for s in servers}
    if not args.no_verify:
        print(
            "\nAcknowledged stores read back after SIGKILL + restart: "
            + ", ".join(f"{k}: {acknowledged[k]} acknowledged, {v} lost" for k, v in lost.items())
        )
    print(
        "\nLOAD_SUMMARY "
        + json.dumps({"rows": rows, "medians": summary, "acknowledged": acknowledged, "lost": lost})
    )


if __name__ == "__main__":
    main()
