"""Screenshots of the web console for docs/console.md, taken in Debian's Chromium.

Starts ``dakera-server serve`` on a free port with a temporary data directory, stores a small
demo data set through the API, signs in and saves one PNG per page in ``docs/console/``. When
``pngquant`` is installed (Debian package ``pngquant``) the PNGs are reduced to 256 colours.

    .venv/bin/python scripts/console_screenshots.py
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = "docs-root-key-0123456789abcdef0123456789"
BIN = Path(sys.executable).parent / "dakera-server"
OUT = Path(__file__).resolve().parent.parent / "docs" / "console"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AGENT = "travel-assistant"
MEMORIES = [
    ("Maria prefers window seats and vegetarian meals on long flights.", ["preference"], 0.8),
    ("Maria flies from Lisbon to Berlin on 2026-03-14 for the Acme offsite.", ["trip"], 0.7),
    ("The Acme offsite in Berlin runs from 2026-03-14 to 2026-03-16.", ["trip", "work"], 0.6),
    ("Maria's colleague Tom joins her in Berlin; he needs a hotel near the venue.", ["trip"], 0.5),
    ("Tom is allergic to peanuts.", ["health"], 0.9),
    ("Maria likes small boutique hotels over large chains.", ["preference"], 0.6),
    ("Booked Hotel Oderberger in Berlin for Maria, three nights.", ["booking"], 0.7),
    ("Maria asked to be reminded about her passport expiry in June.", ["reminder"], 0.5),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(http: httpx.Client) -> None:
    session = http.post("/v1/sessions/start", json={"agent_id": AGENT}).json()["session"]["id"]
    for i, (content, tags, importance) in enumerate(MEMORIES):
        body = {"agent_id": AGENT, "content": content, "tags": tags, "importance": importance}
        if i < 5:
            body["session_id"] = session
        http.post("/v1/memory/store", json=body).raise_for_status()
    http.post(f"/v1/sessions/{session}/end", json={"summary": "Planned the Berlin trip."})
    http.post("/v1/sessions/start", json={"agent_id": AGENT}).raise_for_status()
    for agent, count in (("support-bot", 14), ("research-agent", 6)):
        http.post(
            "/v1/memories/store/batch",
            json={"agent_id": agent, "memories": [{"content": f"Note {i}"} for i in range(count)]},
        ).raise_for_status()
    http.post(
        "/v1/namespaces/product-docs/upsert-text",
        json={
            "documents": [
                {"id": "install", "text": "Install the server with make run.", "metadata": {}},
                {"id": "keys", "text": "Create scoped API keys with POST /admin/keys."},
                {"id": "backup", "text": "Back up the data directory while the server runs."},
            ]
        },
    ).raise_for_status()
    for name, scope in (("query-service", "read"), ("ingest-worker", "write")):
        http.post("/admin/keys", json={"name": name, "scope": scope, "expires_in_days": 90})


def traffic(url: str, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ROOT}"}) as http:
        while not stop.is_set():
            http.post("/v1/memory/recall", json={"agent_id": AGENT, "query": "hotel in Berlin"})
            time.sleep(0.05)


def shot(page: Page, name: str, route: str, wait: str, full: bool = False) -> None:
    page.goto(f"{page.url.split('/console')[0]}/console#/{route}")
    page.wait_for_selector(wait)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)
    print(f"{name}.png {(OUT / f'{name}.png').stat().st_size // 1000} KB")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
        env.update(
            DAKERA_PORT=str(port),
            DAKERA_DATA_DIR=data,
            DAKERA_ROOT_API_KEY=ROOT,
            DAKERA_GRPC_ENABLED="false",
        )
        server = subprocess.Popen(
            [str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        stop = threading.Event()
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ROOT}"}) as http:
                seed(http)
            threading.Thread(target=traffic, args=(url, stop), daemon=True).start()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{url}/console")
                page.wait_for_selector("#api-key")
                page.screenshot(path=str(OUT / "sign-in.png"))
                page.fill("#api-key", ROOT)
                page.press("#api-key", "Enter")
                page.wait_for_selector("#who-badge")
                shot(page, "agents", "agents", "#agents-table")
                shot(
                    page,
                    "memories",
                    f"agents/{AGENT}?q=where+does+Maria+stay+in+Berlin&k=5",
                    "#result-summary",
                )
                memory_id = page.locator("#memory-list article").first.get_attribute(
                    "data-memory-id"
                )
                shot(
                    page,
                    "memory",
                    f"agents/{AGENT}/memories/{memory_id}",
                    "#links-table",
                    full=True,
                )
                shot(page, "graph", f"graph/{AGENT}?depth=2", "#graph-svg")
                page.click("#graph-all")
                page.screenshot(path=str(OUT / "graph.png"))
                shot(page, "sessions", f"sessions/{AGENT}", "#session-timeline")
                shot(page, "namespaces", "namespaces/product-docs", "#pg-run")
                page.fill("#pg-query", "how do I make an API key?")
                page.click("#pg-run")
                page.wait_for_selector("#pg-table")
                page.screenshot(path=str(OUT / "namespaces.png"))
                shot(page, "keys", "keys", "#keys-table")
                shot(page, "audit", "audit?live=1", "#tail-state:text-is('live')")
                page.goto(f"{url}/console#/health")
                page.wait_for_timeout(9000)
                page.screenshot(path=str(OUT / "health.png"), full_page=True)
                phone = browser.new_page(viewport={"width": 390, "height": 844})
                phone.goto(f"{url}/console")
                phone.fill("#api-key", ROOT)
                phone.press("#api-key", "Enter")
                phone.wait_for_selector("#who-badge")
                shot(phone, "phone", f"agents/{AGENT}?q=hotel&k=3", "#result-summary")
                browser.close()
        finally:
            stop.set()
            server.terminate()
            server.wait(timeout=30)
    if shutil.which("pngquant"):
        pngs = sorted(str(p) for p in OUT.glob("*.png"))
        quantize = [
            "pngquant",
            "--force",
            "--skip-if-larger",
            "--ext",
            ".png",
            "--quality",
            "70-95",
        ]
        subprocess.run([*quantize, *pngs], check=False)
    print("total", sum(p.stat().st_size for p in OUT.glob("*.png")) // 1000, "KB")


if __name__ == "__main__":
    main()
