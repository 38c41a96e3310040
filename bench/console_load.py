"""Web console page weight and time to interactive, in Debian's Chromium on loopback.

Starts ``dakera-server serve`` on a free port with a seeded agent, then opens the console in a
fresh browser context (empty cache) several times and reads the browser's own Resource Timing
entries and the console's ``performance.mark``s:

* first load: the sign-in page (HTML, CSS, the ES modules, the icon), bytes on the wire
  (``transferSize``, gzip) and unpacked (``decodedBodySize``), and the time from navigation
  start to ``console:sign-in-ready`` (form drawn, key field focused, handlers attached);
* signed-in load: a tab whose key is already in sessionStorage opening ``#/agents``: the same
  files plus the API calls (whoami, the OpenAPI document the scope checks read, the agent
  list), and the time to ``console:page-ready`` (agents table drawn and usable).

    .venv/bin/python bench/console_load.py            # 10 cold loads of each
    .venv/bin/python bench/console_load.py --runs 3   # quick run

Goal (issue 19): first load ≤ 500 KB of assets, interactive ≤ 1 s on loopback.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from dakera_server.api.console.routes import load_assets

ROOT = "bench-root-key-0123456789abcdef0123456789"
BIN = Path(sys.executable).parent / "dakera-server"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RESOURCES = """() => [performance.getEntriesByType('navigation')[0],
  ...performance.getEntriesByType('resource')].map(e => ({name: e.name, end: e.responseEnd,
    transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize}))"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    env.update(
        DAKERA_PORT=str(port),
        DAKERA_DATA_DIR=str(data),
        DAKERA_ROOT_API_KEY=ROOT,
        DAKERA_GRPC_ENABLED="false",
        RATE_LIMIT_RPS="0",
    )
    process = subprocess.Popen(
        [str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health/ready").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not start")


def seed(url: str) -> None:
    headers = {"Authorization": f"Bearer {ROOT}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for agent in range(20):
            http.post(
                "/v1/memories/store/batch",
                json={
                    "agent_id": f"agent-{agent}",
                    "memories": [{"content": f"Note {i} of agent {agent}"} for i in range(10)],
                },
            ).raise_for_status()


def split(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    files = [e for e in entries if "/console" in e["name"]]
    api = [e for e in entries if "/console" not in e["name"]]
    return files, api


def kb(value: float) -> str:
    return f"{value / 1000:7.1f} KB"


def measure(browser: Any, url: str, signed_in: bool) -> tuple[float, float, list[dict[str, Any]]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    mark = "console:page-ready" if signed_in else "console:sign-in-ready"
    if signed_in:
        # The key in this tab's sessionStorage, as the sign-in form leaves it, before any load.
        page.add_init_script(f"sessionStorage.setItem('dakera.console.key', '{ROOT}')")
        page.goto(f"{url}/console#/agents", wait_until="commit")
    else:
        page.goto(f"{url}/console", wait_until="commit")
    # Functions, not expression strings: the console's CSP forbids eval, which strings need.
    page.wait_for_function("m => performance.getEntriesByName(m).length > 0", arg=mark)
    ready = page.evaluate("m => performance.getEntriesByName(m)[0].startTime", mark)
    page.wait_for_load_state("networkidle")
    entries = page.evaluate(RESOURCES)
    context.close()
    fetched = max(e["end"] for e in entries if "/console" in e["name"])
    return float(ready), float(fetched), entries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    assets = load_assets()
    raw = sum(len(a.body) for a in assets.values())
    packed = sum(len(a.gzipped) for a in assets.values())
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"shipped files: {len(assets)}, {kb(raw)} raw, {kb(packed)} gzip")
    with tempfile.TemporaryDirectory() as data:
        process, url = start(Path(data))
        try:
            seed(url)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for signed_in in (False, True):
                    times = []
                    fetches = []
                    last: list[dict[str, Any]] = []
                    measure(browser, url, signed_in)  # warm the server, not the browser
                    for _ in range(options.runs):
                        ready, fetched, last = measure(browser, url, signed_in)
                        times.append(ready)
                        fetches.append(fetched)
                    files, api = split(last)
                    title = "signed-in load of #/agents" if signed_in else "first load (sign-in)"
                    print(f"\n{title}, {options.runs} cold loads")
                    print(
                        f"  console files: {len(files)} requests, "
                        f"{kb(sum(e['transfer'] for e in files))} on the wire, "
                        f"{kb(sum(e['decoded'] for e in files))} unpacked"
                    )
                    if api:
                        print(
                            f"  API data:      {len(api)} requests, "
                            f"{kb(sum(e['transfer'] for e in api))} on the wire"
                        )
                        ranked = sorted(api, key=lambda e: -e["decoded"])
                        for entry in ranked[:3]:
                            print(f"    {entry['name'][len(url) :]:<40} {kb(entry['decoded'])}")
                        if len(ranked) > 3:
                            rest = sum(e["decoded"] for e in ranked[3:])
                            print(
                                f"    {len(ranked) - 3} more (agent stats, whoami) {kb(rest):>21}"
                            )
                    print(
                        f"  console files all received after: median "
                        f"{statistics.median(fetches):6.1f} ms"
                    )
                    print(
                        f"  interactive after: median {statistics.median(times):6.1f} ms, "
                        f"max {max(times):6.1f} ms"
                    )
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
