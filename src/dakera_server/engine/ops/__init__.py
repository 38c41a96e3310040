"""The operations domain: what an operator asks of a running server.

Owns the request counters and latency histograms with their persisted history (analytics,
KPIs, Prometheus), the slow-query log, namespace quotas and their enforcement in the write
paths, runtime configuration, maintenance mode and the one-node cluster view, index and
storage upkeep, semantic routing and process diagnostics. ``service.Operations`` wires them.

May import every domain below it (lifecycle, graph, vectors, memory, keys, text, ann, events,
access, rules) and ``storage``/``config``/``errors``; only ``core`` imports it. The write paths
of memory and vectors reach quotas through a hook they are given (``admit``), never by import.
"""
