"""Tags and metadata keys that fit the allow-list but spell a system path or an internal host.

The corpus ``label_probes.json`` is ours: SSRF targets in every spelling a label can hold
(decimal, octal, hex, short and packed forms, IPv6 and IPv4-mapped, metadata and rebinding
names, with ports, user-info and scheme prefixes), system paths (``bin/visudo``,
``wp-config-php.bak``…) and everyday tags that look close to them (``lib/utils``, ``10.2``,
``port:8080``, ``localhost``), which must pass.
"""

from __future__ import annotations

import ipaddress
import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dakera_server.errors import DakeraError
from dakera_server.security.inspection.probes import ssrf_probe, system_path_probe
from dakera_server.security.validation import RequestValidator

CORPUS = Path(__file__).with_name("label_probes.json")
VALIDATOR = RequestValidator([])
# Short dotted forms that are also version numbers ("10.0.1"), and a bare "0": passed on purpose.
AMBIGUOUS = {"10.0.1", "172.16.1", "0", "0.0.0"}


@cache
def corpus() -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(CORPUS.read_text())
    return data


def refusal(document: Any) -> str | None:
    try:
        VALIDATOR.check_document(document, None)
    except DakeraError as exc:
        return exc.message
    return None


@pytest.mark.parametrize("place", ["tag", "metadata key"])
def test_ssrf_labels_are_refused(place: str) -> None:
    passed = [
        label
        for label in corpus()["ssrf labels"]
        if label not in AMBIGUOUS
        and refusal({"tags": [label]} if place == "tag" else {"metadata": {label: 1}}) is None
    ]
    assert passed == []
    assert len(corpus()["ssrf labels"]) >= 150


@pytest.mark.parametrize("place", ["tag", "metadata key"])
def test_system_paths_are_refused(place: str) -> None:
    passed = [
        label
        for label in corpus()["system paths"]
        if refusal({"tags": [label]} if place == "tag" else {"metadata": {label: 1}}) is None
    ]
    assert passed == []


def test_everyday_tags_pass() -> None:
    refused = {
        tag: reason
        for tag in corpus()["benign tags"]
        if (reason := refusal({"tags": [tag]})) is not None
    }
    assert refused == {}


def test_the_category_is_named() -> None:
    assert "command injection" in str(refusal({"tags": ["bin/visudo"]}))
    assert "path traversal" in str(refusal({"tags": ["wp-config-php.bak"]}))
    assert "ssrf" in str(refusal({"metadata": {"127.0.0.1:6379": 1}}))


INTERNAL = st.sampled_from(
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.20.1.1", "169.254.169.254", "100.100.100.200"]
)


@settings(max_examples=200, deadline=None)
@given(target=INTERNAL, form=st.sampled_from(["decimal", "hex", "octal", "mapped", "port"]))
def test_internal_addresses_in_any_spelling_are_refused(target: str, form: str) -> None:
    address = ipaddress.IPv4Address(target)
    octets = [int(o) for o in target.split(".")]
    spelled = {
        "decimal": str(int(address)),
        "hex": hex(int(address)),
        "octal": ".".join(f"0{o:o}" for o in octets),
        "mapped": f"0:0:0:0:0:ffff:{target}",
        "port": f"{target}:8080",
    }[form]
    assert ssrf_probe(spelled) is not None, spelled


WORD = st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10)


@settings(max_examples=300, deadline=None)
@given(first=WORD, second=WORD)
@example(first="aaa", second="idecdsa")  # CI found it: a key file's name without its "_"
def test_hierarchical_word_tags_pass_unless_they_start_at_a_system_directory(
    first: str, second: str
) -> None:
    from dakera_server.security.inspection.probes import SYSTEM_DIRS, SYSTEM_LOCATIONS

    tag = f"{first}/{second}"
    if first in SYSTEM_DIRS or any(tag.startswith("/".join(loc)) for loc in SYSTEM_LOCATIONS):
        return
    assert system_path_probe(tag) is None, tag
    assert ssrf_probe(tag) is None, tag


@settings(max_examples=200, deadline=None)
@given(major=st.integers(0, 99), minor=st.integers(0, 99), patch=st.integers(0, 999))
def test_version_numbers_pass(major: int, minor: int, patch: int) -> None:
    for tag in (f"{major}.{minor}", f"v{major}.{minor}.{patch}", f"release-{major}.{minor}"):
        assert refusal({"tags": [tag]}) is None, tag


def test_the_served_app_refuses_probes_and_keeps_ordinary_tags(
    http: httpx.Client, agent_id: str
) -> None:
    for tag in ("bin/visudo", "bin/chef", "wp-config-php.bak", "0x7f000001", "127.0.0.1:22"):
        answer = http.post(
            "/v1/memory/store", json={"agent_id": agent_id, "content": "note", "tags": [tag]}
        )
        assert answer.status_code == 400, (tag, answer.text)
        assert tag not in answer.text  # the refusal never echoes the value
    stored = http.post(
        "/v1/memory/store",
        json={
            "agent_id": agent_id,
            "content": "note",
            "tags": ["a/b", "lib/utils", "v1.2.3", "localhost", "port:8080"],
            "metadata": {"bin/release notes": 1, "project/alpha": 2},
        },
    )
    assert stored.status_code == 200, stored.text
    keyed = http.post(
        "/v1/memory/store",
        json={"agent_id": agent_id, "content": "note", "metadata": {"etc/passwd": 1}},
    )
    assert keyed.status_code == 400
