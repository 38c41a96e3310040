"""The console in a real browser (Debian's Chromium through Playwright) against a real server.

Flows of issue 19: a write key stores, finds, opens and forgets a memory; a read key gets no
write control; a wrong key gets a clear message; the graph draws the seeded agent's nodes; the
audit tail shows another client's request within 2 s; the layout holds at 390×844 and
1280×800; keys are created and revoked with the secret shown once; keyboard navigation works.
Every test also fails on any error the browser logs (``conftest.py``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import start_server
from tests.console.conftest import DESKTOP, Console, ConsoleServer, open_console, screenshot

PAGES = ["agents", "graph", "sessions", "namespaces", "keys", "audit", "health"]


def _seed(server: ConsoleServer, agent: str, contents: list[str]) -> list[str]:
    with server.http() as http:
        ids = []
        for content in contents:
            answer = http.post("/v1/memory/store", json={"agent_id": agent, "content": content})
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["memory"]["id"])
        return ids


def test_write_key_stores_finds_opens_and_forgets_a_memory(
    console: Console, console_server: ConsoleServer
) -> None:
    page = console.page
    agent = "console-writer"
    console.sign_in(console_server.keys.write)
    console.open(f"agents/{agent}")
    page.fill("#store-content", "The user's favourite tea is Darjeeling, first flush.")
    page.fill("#store-tags", "preference, tea")
    page.click("#store-form button[type=submit]")
    page.wait_for_selector("#status:has-text('Stored mem_')")
    stored_id = page.inner_text("#status").split("Stored ")[1].rstrip(".")

    page.fill("#search", "which tea does the user like?")
    page.press("#search", "Enter")
    page.wait_for_selector("#result-summary:has-text('recalled for')")
    card = page.locator(f'#memory-list article[data-memory-id="{stored_id}"]')
    assert card.count() == 1
    reasons = card.locator("[data-testid=reasons]").inner_text()
    assert "score" in reasons and "meaning" in reasons and "keywords" in reasons

    card.locator(".content a").click()
    page.wait_for_selector("#memory-content")
    assert "Darjeeling" in page.inner_text("#memory-content")
    page.wait_for_selector("#memory-entities, #memory-links, #memory-feedback")

    page.click("#forget-memory")
    page.click("dialog button:has-text('Forget')")
    page.wait_for_selector(f"main h1:has-text('Agent {agent}')")
    with console_server.http() as http:
        gone = http.get(f"/v1/memory/get/{stored_id}", params={"agent_id": agent})
    assert gone.status_code == 404


@pytest.mark.parametrize("kind", ["read", "write"])
def test_write_controls_follow_the_keys_scope(
    console: Console, console_server: ConsoleServer, kind: str
) -> None:
    agent = "console-scopes"
    memory_id = _seed(console_server, agent, ["Ann keeps the spare keys in the blue drawer."])[0]
    with console_server.http() as http:
        http.post("/v1/sessions/start", json={"agent_id": agent}).raise_for_status()
        http.post(
            "/v1/namespaces/console-docs/upsert-text",
            json={"documents": [{"id": "d1", "text": "hello"}]},
        ).raise_for_status()
    console.sign_in(getattr(console_server.keys, kind))
    assert console.page.inner_text("#who-badge").endswith(kind)
    routes = [
        f"agents/{agent}",
        f"agents/{agent}/memories/{memory_id}",
        f"sessions/{agent}",
        "namespaces",
        "namespaces/console-docs",
    ]
    counts = {}
    for route in routes:
        console.open(route)
        console.page.wait_for_load_state("networkidle")
        counts[route] = console.page.locator("[data-write]").count()
    if kind == "read":
        assert counts == dict.fromkeys(routes, 0)
    else:
        assert all(count > 0 for count in counts.values()), counts
    nav = console.page.locator("#nav a").all_inner_texts()
    assert "Keys" not in nav and "Agents" in nav


def test_a_wrong_key_gets_a_clear_message(console: Console) -> None:
    console.expect_error(r"Failed to load resource: .* 401")
    page = console.page
    page.goto(f"{console.url}/console")
    page.fill("#api-key", "dk_" + "0" * 32)
    page.press("#api-key", "Enter")
    message = page.wait_for_selector("#login-error:has-text('not accepted')").inner_text()
    assert "INVALID_API_KEY" in message
    assert page.locator("#nav a").count() == 0
    assert page.evaluate("sessionStorage.length") == 0


def _graph(server: ConsoleServer, agent: str) -> tuple[set[str], dict[str, set[str]], int]:
    """All node ids, adjacency (memories and entities) and entity count, from the API."""
    with server.http() as http:
        export = http.get(f"/v1/agents/{agent}/graph/export").json()
        memories = http.get(f"/v1/agents/{agent}/memories", params={"limit": 1000}).json()
    nodes = {m["id"] for m in memories}
    links: list[tuple[str, str]] = [(e["from_id"], e["to_id"]) for e in export["edges"]]
    for entity in export["entities"]:
        nodes.add(entity["id"])
        links += [(memory_id, entity["id"]) for memory_id in entity["memory_ids"]]
    adjacency: dict[str, set[str]] = {}
    for a, b in links:
        nodes |= {a, b}
        adjacency.setdefault(a, set()).add(b)
        adjacency.setdefault(b, set()).add(a)
    return nodes, adjacency, len(export["entities"])


def test_graph_draws_the_seeded_agents_nodes_and_expands_on_click(
    console: Console, console_server: ConsoleServer
) -> None:
    agent = "console-graph"
    ids = _seed(
        console_server,
        agent,
        [
            "Alice met Bob in Paris on 2024-03-14 to discuss the roadmap.",
            "Bob prefers tea over coffee; Alice likes espresso in Paris.",
            "Carol moved to Berlin and now works with Bob at Acme.",
        ],
    )
    nodes, adjacency, entity_count = _graph(console_server, agent)
    assert entity_count >= 3 and len(nodes) == 3 + entity_count
    page = console.page
    console.sign_in(console_server.keys.read)

    focus = ids[2]
    console.open(f"graph/{agent}?focus={focus}&depth=1")
    shown = {focus} | adjacency.get(focus, set())
    assert page.locator("#graph-svg g.node").count() == len(shown)

    # Click a shown node whose neighbours are not all shown yet: exactly those get added.
    candidate = next(n for n in sorted(shown) if adjacency.get(n, set()) - shown)
    expanded = shown | adjacency[candidate]
    node = page.locator(f'#graph-svg g.node[data-id="{candidate}"]')
    if node.get_attribute("data-kind") == "memory":
        node.locator("circle").click()
    else:
        node.focus()
        page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#graph-svg g.node').length === n", arg=len(expanded)
    )

    page.click("#graph-all")
    page.wait_for_function(
        "n => document.querySelectorAll('#graph-svg g.node').length === n", arg=len(nodes)
    )
    assert page.locator("#graph-svg g.node.entity").count() == entity_count
    assert page.locator("#graph-svg line.edge").count() >= entity_count


def test_audit_tail_shows_another_clients_request_within_two_seconds(
    console: Console, console_server: ConsoleServer
) -> None:
    page = console.page
    console.sign_in(console_server.keys.read)
    console.open("audit?live=1")
    page.wait_for_selector("#tail-state:text-is('live')")
    with console_server.http(console_server.keys.write) as other_client:
        started = time.monotonic()
        answer = other_client.post(
            "/v1/memory/store", json={"agent_id": "console-tail", "content": "Tail me."}
        )
        memory_id = answer.json()["memory"]["id"]
    page.wait_for_selector(f"#audit-table tr:has-text('{memory_id}')", timeout=2000)
    assert time.monotonic() - started < 2.0
    row = page.locator(f"#audit-table tr:has-text('{memory_id}')").inner_text()
    assert "stored" in row and "console-tail" in row


def test_super_admin_creates_rotates_and_revokes_a_key_seeing_each_secret_once(
    console: Console, console_server: ConsoleServer
) -> None:
    page = console.page
    console.sign_in(console_server.keys.super_admin)
    console.open("keys")
    page.fill("#key-name", "made-in-console")
    page.select_option("#key-scope", "read")
    page.fill("#key-expires", "30")
    page.click("#key-create")
    secret = page.wait_for_selector("#new-secret").inner_text()
    page.click("dialog button:has-text('I have saved it')")
    page.wait_for_selector("#new-secret", state="detached")  # the dialog closes on its own tick
    with console_server.http(secret) as http:
        who = http.get("/v1/auth/whoami").json()
    assert who["name"] == "made-in-console" and who["scope"] == "read"
    assert secret not in page.content()

    row = page.locator("#keys-table tr:has-text('made-in-console')")
    row.locator("button:has-text('Rotate')").click()
    page.click("dialog button:has-text('OK')")
    rotated = page.wait_for_selector("#new-secret").inner_text()
    page.click("dialog button:has-text('I have saved it')")
    with console_server.http(secret) as old, console_server.http(rotated) as new:
        assert old.get("/v1/auth/whoami").status_code == 401
        assert new.get("/v1/auth/whoami").status_code == 200

    new_row = page.locator("#keys-table tr:has-text('made-in-console'):has-text('active')")
    new_row.locator("button:has-text('Usage')").click()
    page.wait_for_selector("#key-usage h2:has-text('Usage of made-in-console')")
    new_row.locator("button:has-text('Revoke')").click()
    page.click("dialog button:has-text('Revoke')")
    page.wait_for_selector("#status:has-text('Revoked')")
    with console_server.http(rotated) as revoked:
        assert revoked.get("/v1/auth/whoami").status_code == 401


def _fits(console: Console) -> int:
    return int(console.page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


@pytest.mark.parametrize("viewport", ["console", "phone"])
def test_every_page_fits_the_viewport(
    request: pytest.FixtureRequest, console_server: ConsoleServer, viewport: str
) -> None:
    tab: Console = request.getfixturevalue(viewport)
    _seed(console_server, "console-layout", ["A long-ish memory " * 12])
    tab.sign_in(console_server.keys.super_admin)
    overflow = {}
    for route in [*PAGES, "agents/console-layout", "graph/console-layout"]:
        tab.open(route)
        tab.page.wait_for_load_state("networkidle")
        overflow[route] = _fits(tab)
        assert tab.page.locator("#nav a").first.is_visible()
    assert overflow == dict.fromkeys(overflow, 0), overflow


def test_keyboard_alone_signs_in_and_moves_between_pages(
    console: Console, console_server: ConsoleServer
) -> None:
    page = console.page
    page.goto(f"{console.url}/console")
    page.wait_for_selector("#api-key")
    assert page.evaluate("document.activeElement.id") == "api-key"
    page.keyboard.type(console_server.keys.read)
    page.keyboard.press("Enter")
    page.wait_for_selector("main h1:has-text('Agents')")
    page.keyboard.press("g")
    page.keyboard.press("l")
    page.wait_for_selector("main h1:has-text('Audit log')")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "audit-agent"
    # From the page heading (focused after each navigation), Shift+Tab reaches the menu.
    page.evaluate("document.querySelector('main h1').focus()")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.textContent") == "Health"
    page.keyboard.press("Enter")
    page.wait_for_selector("main h1:has-text('Health and metrics')")


def test_health_page_plots_request_rate_and_latency(
    console: Console, console_server: ConsoleServer
) -> None:
    page = console.page
    console.sign_in(console_server.keys.read)
    console.open("health")
    page.wait_for_selector("#health-status:text-is('healthy')")
    page.wait_for_selector("#latency-chart svg polyline, #latency-chart svg circle", timeout=9000)
    rate = page.inner_text("#metric-rate")
    assert float(rate) >= 0
    assert page.locator("#rate-chart svg").count() == 1


def test_health_page_of_an_admin_key_plots_from_the_analytics_routes(
    console: Console, console_server: ConsoleServer
) -> None:
    """An admin key may read /v1/analytics/*: the page takes its points from there (the
    server's own histograms), not from scraping /metrics."""
    page = console.page
    with console_server.http() as admin:
        for _ in range(5):
            admin.post("/v1/memory/recall", json={"agent_id": "console-health", "query": "x"})
    console.sign_in(console_server.keys.super_admin)
    console.open("health")
    page.wait_for_selector("text=From the analytics routes")
    page.wait_for_selector("#latency-chart svg polyline, #latency-chart svg circle", timeout=9000)
    p50 = page.inner_text("#metric-p50")
    assert p50.endswith(" ms") and float(p50.removesuffix(" ms").replace(",", "")) > 0
    assert not console.unexpected_errors(), console.errors


def test_with_authentication_off_the_console_opens_without_a_key(
    request: pytest.FixtureRequest,
    browser: Any,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: EmbeddingProvider,
) -> None:
    server = start_server(tmp_path_factory.mktemp("console-open"), embedder, auth_enabled=False)
    context, tab = open_console(browser, server.url, DESKTOP)
    try:
        tab.page.goto(f"{server.url}/console")
        tab.page.wait_for_selector("main h1:has-text('Agents')")
        assert tab.page.inner_text("#who-badge") == "authentication off"
        assert tab.page.locator("#sign-out").count() == 0
        assert "Keys" in tab.page.locator("#nav a").all_inner_texts()
        assert not tab.unexpected_errors(), tab.errors
    except BaseException:
        screenshot(request, tab)
        raise
    finally:
        context.close()
        server.stop()
