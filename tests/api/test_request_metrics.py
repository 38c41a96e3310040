"""``/metrics`` counts every request by method and status class, with a latency histogram."""

from __future__ import annotations

import re

import httpx
from hypothesis import given
from hypothesis import strategies as st

from dakera_server.security.requestmetrics import BUCKETS, RequestMetrics
from tests.conftest import RunningServer

SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? (\S+)$")


def _scrape(http: httpx.Client) -> dict[str, float]:
    answer = http.get("/metrics")
    assert answer.status_code == 200
    values = {}
    for line in answer.text.splitlines():
        match = SAMPLE.match(line)
        if match:
            values[f"{match[1]}{{{match[2] or ''}}}"] = float(match[3])
    return values


def test_metrics_count_requests_and_their_latency(server: RunningServer) -> None:
    with server.http(key=None) as anonymous, server.http() as http:
        before = _scrape(anonymous)
        for _ in range(3):
            assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/v1/agents").status_code == 401
        assert http.post("/v1/memory/store", json={"agent_id": "m"}).status_code in (400, 422)
        after = _scrape(anonymous)

    def delta(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    # The first scrape is counted once its answer has started, so the second one sees it.
    assert delta('dakera_http_requests_total{method="GET",code="2xx"}') == 4
    assert delta('dakera_http_requests_total{method="GET",code="4xx"}') == 1
    assert delta('dakera_http_requests_total{method="POST",code="4xx"}') == 1
    assert delta("dakera_http_request_duration_seconds_count{}") == 6
    assert delta('dakera_http_request_duration_seconds_bucket{le="+Inf"}') == 6
    assert delta("dakera_http_request_duration_seconds_sum{}") > 0
    cumulative = [
        after[f'dakera_http_request_duration_seconds_bucket{{le="{b!r}"}}'] for b in BUCKETS
    ]
    assert cumulative == sorted(cumulative)


@given(
    st.lists(
        st.tuples(
            st.text(max_size=8),
            st.integers(min_value=-5, max_value=1000),
            st.floats(min_value=0, max_value=100, allow_nan=False),
        ),
        max_size=60,
    )
)
def test_any_requests_give_consistent_bounded_series(
    requests: list[tuple[str, int, float]],
) -> None:
    metrics = RequestMetrics()
    for method, status, seconds in requests:
        metrics.record(method, status, seconds)
    lines = metrics.render()
    counts = [line for line in lines if line.startswith("dakera_http_requests_total{")]
    assert sum(int(line.rsplit(" ", 1)[1]) for line in counts) == len(requests)
    # Label values come from small fixed sets whatever the input (no cardinality blow-up).
    for line in counts:
        method, code = re.findall(r'"([^"]*)"', line)
        assert method in {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER"}
        assert re.fullmatch(r"[1-5]xx|other", code)
    buckets = [int(line.rsplit(" ", 1)[1]) for line in lines if "_bucket{" in line]
    assert buckets == sorted(buckets) and buckets[-1] == len(requests)
    assert len(buckets) == len(BUCKETS) + 1
