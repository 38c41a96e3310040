"""How the server serves the console: its own CSP, public static files, the off switch.

No browser here: HTTP against a real server, and checks on the shipped files themselves.
"""

from __future__ import annotations

import fnmatch
import gzip
import re
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import pytest

from dakera_server.api.console.routes import load_assets
from dakera_server.config import Settings
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.security.headers import CONSOLE_CSP, DEFAULT_CSP
from tests.conftest import RunningServer, start_server

STATIC = resources.files("dakera_server.api.console").joinpath("static")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("console-serving"), embedder)
    yield server
    server.stop()


def test_console_pages_get_their_own_csp_and_the_api_keeps_its_own(
    served: RunningServer,
) -> None:
    with served.http(key=None) as anonymous, served.http() as http:
        page = anonymous.get("/console")
        script = anonymous.get("/console/js/main.js")
        api = http.get("/v1/agents")
    for answer in (page, script):
        assert answer.status_code == 200
        csp = answer.headers["content-security-policy"]
        assert csp == CONSOLE_CSP
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
    assert api.headers["content-security-policy"] == DEFAULT_CSP
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"


def test_every_shipped_file_is_served_gzipped_with_an_etag(served: RunningServer) -> None:
    assets = load_assets()
    assert {"index.html", "console.css", "js/main.js", "js/api.js"} <= set(assets)
    with served.http(key=None) as anonymous:
        for name, asset in assets.items():
            path = "/console" if name == "index.html" else f"/console/{name}"
            raw = anonymous.get(path, headers={"Accept-Encoding": "identity"})
            assert raw.status_code == 200, path
            if name != "index.html":
                assert raw.content == asset.body
            zipped = anonymous.get(path, headers={"Accept-Encoding": "gzip"})
            assert zipped.headers["content-encoding"] == "gzip"
            assert zipped.content == raw.content  # httpx decodes it
            again = anonymous.get(path, headers={"If-None-Match": raw.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
        assert anonymous.get("/console/js/nothing.js").status_code == 401
        assert anonymous.get("/console/../openapi.json").status_code == 401
        slash = anonymous.get("/console/", follow_redirects=False)
        assert slash.status_code == 308 and slash.headers["location"] == "../console"
    assert len(gzip.compress(assets["js/main.js"].body)) < len(assets["js/main.js"].body)


def test_the_files_hold_no_inline_script_or_style_and_never_write_html() -> None:
    """The CSP would block inline code anyway; this keeps the files from needing it, and
    keeps server data out of HTML parsing (the DOM is built from text nodes)."""
    index = STATIC.joinpath("index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", index)
    assert "<style" not in index and " style=" not in index and " on" + "click=" not in index
    for name, asset in load_assets().items():
        text = asset.body.decode()
        if name.endswith(".js"):
            assert "innerHTML" not in text and "outerHTML" not in text, name
            assert "insertAdjacentHTML" not in text and "eval(" not in text, name
            # No other origin: the only absolute URL is the SVG namespace name (never fetched).
            others = text.replace('"http://www.w3.org/2000/svg"', "")
            assert "http://" not in others and "https://" not in others, name


def test_console_can_be_switched_off(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> None:
    assert Settings.from_env({"DAKERA_CONSOLE_ENABLED": "false"}).console_enabled is False
    assert Settings.from_env({}).console_enabled is True
    server = start_server(tmp_path_factory.mktemp("no-console"), embedder, console_enabled=False)
    try:
        with server.http(key=None) as anonymous, server.http() as http:
            assert anonymous.get("/console").status_code == 401
            assert http.get("/console").status_code == 404
            assert http.get("/console/js/main.js").status_code == 404
            assert http.get("/v1/agents").status_code == 200
    finally:
        server.stop()


def test_with_auth_off_the_page_says_so_and_keeps_its_csp_under_any_preset(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> None:
    server = start_server(
        tmp_path_factory.mktemp("console-open"),
        embedder,
        auth_enabled=False,
        security_preset="permissive",
    )
    try:
        answer = httpx.get(f"{server.url}/console")
        assert 'data-auth="off"' in answer.text
        assert answer.headers["content-security-policy"] == CONSOLE_CSP
        assert "content-security-policy" not in httpx.get(f"{server.url}/health").headers
    finally:
        server.stop()


def test_the_package_data_globs_ship_every_console_file() -> None:
    """A file the globs of pyproject.toml miss would be served from a checkout but absent
    from an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["dakera_server"]
    static = root / "src" / "dakera_server" / "api" / "console" / "static"
    files = [p for p in static.rglob("*") if p.is_file()]
    assert len(files) == len(load_assets())
    for path in files:
        relative = str(path.relative_to(root / "src" / "dakera_server"))
        hits = [
            g for g in globs if fnmatch.fnmatch(relative, g) and g.count("/") == relative.count("/")
        ]
        assert hits, f"{relative} is not in [tool.setuptools.package-data]"
