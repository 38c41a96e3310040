"""The metrics registry: histogram quantiles, window differences and snapshot round trips."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.ops.metrics import MetricsRegistry, MetricsState, route_kind
from dakera_server.engine.ops.stats import BOUNDS_MS, Histogram

durations = st.lists(
    st.floats(min_value=0.0, max_value=60_000.0, allow_nan=False), min_size=1, max_size=300
)


def _bucket_of(ms: float) -> tuple[float, float]:
    """The (lower, upper] bounds of the bucket ``ms`` falls in."""
    lower = 0.0
    for bound in BOUNDS_MS:
        if ms <= bound:
            return lower, bound
        lower = bound
    return BOUNDS_MS[-1], math.inf


@settings(max_examples=200, deadline=None)
@given(durations, st.sampled_from([0.5, 0.95, 0.99]))
def test_a_quantile_lies_in_the_bucket_of_the_true_quantile(values: list[float], q: float) -> None:
    histogram = Histogram()
    for value in values:
        histogram.observe(value)
    ordered = sorted(values)
    true = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
    lower, upper = _bucket_of(true)
    estimate = histogram.quantile(q)
    assert lower <= estimate <= (max(values) if upper == math.inf else upper)
    assert histogram.count == len(values)
    assert math.isclose(histogram.sum_ms, sum(values), rel_tol=1e-9, abs_tol=1e-6)


def test_an_empty_histogram_answers_zero() -> None:
    assert Histogram().quantile(0.99) == 0.0
    assert Histogram().highest_ms() == 0.0


@settings(max_examples=100, deadline=None)
@given(durations, durations)
def test_a_window_is_the_difference_of_two_states(before: list[float], after: list[float]) -> None:
    registry = MetricsRegistry()
    for value in before:
        registry.observe("POST", "/v1/memory/recall", 200, value, "ns")
    base = registry.snapshot()
    for value in after:
        registry.observe("POST", "/v1/memory/recall", 200, value, "ns")
    window = registry.snapshot().minus(base)
    route = window.route("POST /v1/memory/recall")
    assert route.requests == len(after)
    assert route.recalls == len(after)
    assert window.namespaces["ns"].latency.count == len(after)


def test_snapshots_round_trip_and_restore_continues_counting() -> None:
    registry = MetricsRegistry()
    for status in (200, 200, 404, 500):
        registry.observe("POST", "/v1/memory/store", status, 12.0, "_dakera_agent_a", 100, 50)
    registry.count_records("_dakera_agent_a", 2)
    state = MetricsState.from_wire(registry.snapshot().to_wire())
    restored = MetricsRegistry()
    restored.restore(state)
    restored.observe("POST", "/v1/memory/store", 200, 3.0, "_dakera_agent_a")
    route = restored.snapshot().route("POST /v1/memory/store")
    assert (route.requests, route.errors_4xx, route.errors_5xx, route.stores) == (5, 1, 1, 3)
    named = restored.snapshot().namespaces["_dakera_agent_a"]
    assert (named.records, named.stores, named.errors_4xx, named.bytes_in) == (2, 3, 1, 200)


def test_refused_requests_never_create_a_namespace_label() -> None:
    registry = MetricsRegistry(max_namespaces=2)
    registry.observe("POST", "/v1/namespaces/{namespace}/query", 404, 1.0, "made-up")
    assert "made-up" not in registry.namespaces
    for name in ("a", "b", "c", "d"):
        registry.observe("POST", "/v1/namespaces/{namespace}/query", 200, 1.0, name)
    assert set(registry.namespaces) == {"a", "b", "_other"}
    assert registry.namespaces["_other"].requests == 2


def test_route_kinds() -> None:
    assert route_kind("POST", "/v1/memory/recall") == "recall"
    assert route_kind("POST", "/v1/memories/store/batch") == "store"
    assert route_kind("POST", "/v1/namespaces/{namespace}/query-text") == "query"
    assert route_kind("POST", "/v1/namespaces/{namespace}/vectors") == "store"
    assert route_kind("GET", "/v1/memory/recall") == ""
    assert route_kind("POST", "/v1/namespaces/{namespace}/vectors/count") == ""
