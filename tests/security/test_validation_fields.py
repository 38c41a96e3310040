"""Structured fields: the command lines that fit the key pattern, and redirect/rebinding hosts.

Regression tests for the payload shapes that used to pass as metadata keys (``which curl``,
``netsh firewall set opmode disable``, ``sleep 10``, ``net view``) and as URL fields
(``<base32>.302.r3dir.me``), and for the legitimate keys and URLs that must keep passing
(``benign_fields.json``: keys that loaders, tracers and spreadsheets really produce, public
webhook and API URLs).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import httpx
import pytest

from dakera_server.errors import DakeraError, InjectionDetected
from dakera_server.security.validation import RequestValidator

VALIDATOR = RequestValidator()
BENIGN = Path(__file__).with_name("benign_fields.json")
COMMAND_KEYS = [
    "which curl",
    "which python",
    "netsh firewall set opmode disable",
    "net view",
    "net user",
    "net localgroup administrators",
    "sleep 10",
    "sleep 0.5",
    "timeout 5",
    "whoami all",
    "nslookup attacker.example",
    "ping 127.0.0.1",
    "ping evil.example",
    "dig evil.example",
    "wget evil.example",
    "curl evil.example",
    "nc 10.0.0.1 4444",
    "python exploit.py",
    "bash run.sh",
    "certutil urlcache",
    "reg query HKLM",
    "systeminfo all",
]
REDIRECT_URLS = [
    "https://62epax5fhvj3zzmzigyoe5ipkbn7fysllvges3a.302.r3dir.me",
    "https://307.r3dir.me/--to/?url=https://example.com",
    "http://7f000001.c0a80001.rbndr.us/",
    "http://make-1.2.3.4-rebind-169.254-169.254-rr.1u.ms/",
    "http://spoofed.burpcollaborator.net/",
    "http://localh.st:8080/",
    "https://R3DIR.ME/",
]


@cache
def benign(name: str) -> list[str]:
    values: list[str] = json.loads(BENIGN.read_text())[name]
    return values


def refusal(document: object) -> DakeraError | None:
    try:
        VALIDATOR.check_document(document, None)
    except DakeraError as exc:
        return exc
    return None


@pytest.mark.parametrize("key", COMMAND_KEYS)
def test_a_key_that_reads_as_a_command_line_is_refused(key: str) -> None:
    for document in ({"metadata": {key: 1}}, {"metadata": {"nested": {key: "x"}}}):
        error = refusal(document)
        assert isinstance(error, InjectionDetected), (key, error)
        assert "command injection" in str(error) and "metadata" in str(error)
        assert key not in str(error)  # never echoed


def test_command_words_in_everyday_keys_pass() -> None:
    keys = benign("metadata keys")
    assert len(keys) > 100
    refused = [k for k in keys if refusal({"metadata": {k: "v"}}) is not None]
    assert refused == []


@pytest.mark.parametrize("url", REDIRECT_URLS)
def test_redirect_and_rebinding_services_are_refused_in_url_fields(url: str) -> None:
    error = refusal({"webhook_url": url})
    assert isinstance(error, InjectionDetected), (url, error)
    assert "ssrf" in str(error) and "webhook_url" in str(error)


def test_public_urls_pass_in_url_fields() -> None:
    urls = benign("URL fields")
    refused = [(u, str(refusal({"webhook_url": u}))) for u in urls]
    assert [r for r in refused if r[1] != "None"] == []


def test_the_served_app_refuses_a_command_key(http: httpx.Client, agent_id: str) -> None:
    answer = http.post(
        "/v1/memory/store",
        json={"agent_id": agent_id, "content": "note", "metadata": {"which curl": 1}},
    )
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "INVALID_REQUEST" and "command injection" in body["error"]
    stored = http.post(
        "/v1/memory/store",
        json={
            "agent_id": agent_id,
            "content": "note",
            "metadata": {"user_id": "u1", "source.file": "a.md", "x-trace": "t", "Header 1": "h"},
        },
    )
    assert stored.status_code == 200, stored.text
