"""The SSRF guard of the ODE sidecar client: which targets are refused, and why.

Every check here is decided before any connection: no test sends traffic anywhere.
"""

from __future__ import annotations

import ipaddress

import pytest

from dakera_server.engine.entities.sidecar import OdeClient, check_target
from dakera_server.errors import InvalidInput, Unavailable


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://10.0.0.5:8080",
        "http://172.16.3.4",
        "http://192.168.1.20/ode",
        "http://[::1]:8080",
        "http://[fd00::1]",
        "http://[::ffff:127.0.0.1]",
    ],
)
def test_loopback_and_private_targets_need_the_operator_switch(url: str) -> None:
    with pytest.raises(InvalidInput, match="loopback or private"):
        check_target(url, allow_private=False)
    normalised, addresses = check_target(url, allow_private=True)
    assert addresses and not normalised.endswith("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]",
        "http://[::ffff:169.254.169.254]",
        "http://0.0.0.0:8080",
        "http://224.0.0.1",
    ],
)
def test_metadata_link_local_and_multicast_targets_are_always_refused(url: str) -> None:
    for allow in (False, True):
        with pytest.raises(InvalidInput, match="link-local, multicast or unspecified"):
            check_target(url, allow_private=allow)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.216.34/",
        "file:///etc/passwd",
        "http://user:secret@93.184.216.34/",
        "http://93.184.216.34/?next=http://10.0.0.1",
        "not a url",
    ],
)
def test_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_target(url, allow_private=True)


def test_a_public_address_passes() -> None:
    url, addresses = check_target("http://93.184.216.34:8080/", allow_private=False)
    assert url == "http://93.184.216.34:8080"
    assert addresses == [ipaddress.ip_address("93.184.216.34")]


def test_plain_http_is_pinned_to_the_checked_address() -> None:
    address = ipaddress.ip_address("10.0.0.7")
    url, headers = OdeClient._pinned("http://ode.internal:8080/ode/extract", [address])
    assert url == "http://10.0.0.7:8080/ode/extract"
    assert headers == {"Host": "ode.internal:8080"}
    same, none = OdeClient._pinned("https://ode.internal/ode/extract", [address])
    assert same == "https://ode.internal/ode/extract" and none == {}


def test_a_refused_target_is_unavailable_not_contacted() -> None:
    client = OdeClient("http://169.254.169.254", allow_private=True)
    with pytest.raises(Unavailable, match="not reachable"):
        client.extract("text", agent_id="a")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "malformed JSON"),
        (b'{"found": []}', "no 'entities' list"),
        (b'{"entities": [{"text": 3, "label": "x"}]}', "malformed entity"),
        (b'{"entities": ["GPT-4"]}', "malformed entity"),
    ],
)
def test_malformed_sidecar_answers_are_unavailable(raw: bytes, message: str) -> None:
    with pytest.raises(Unavailable, match=message):
        OdeClient._parse(raw, "content", 1.0)


def test_sidecar_labels_are_normalised_and_bad_spans_dropped() -> None:
    raw = (
        b'{"model": "gliner-small", "entities": ['
        b'{"text": "Paris", "label": "GPE", "start": 0, "end": 5, "score": 0.9},'
        b'{"text": "Ada", "label": "PERSON", "start": 90, "end": 93, "score": 0.8}]}'
    )
    result = OdeClient._parse(raw, "Paris is lovely", 2.0)
    assert [(e.entity_type, e.value, e.start) for e in result.entities] == [
        ("location", "Paris", 0),
        ("person", "Ada", -1),
    ]
    assert result.model == "gliner-small"
    assert {e.extractor for e in result.entities} == {"gliner:gliner-small"}
