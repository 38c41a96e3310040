"""Agent memories: the store path, recall and its scoring, sessions, agents, listing.

Owns: ``MemoryEngine`` (store, get, update, forget, importance; per-agent indexes and their
snapshots), recall (query analysis, fusion of vector and BM25 scores, the decay curve that ranks
by faded importance), sessions, the agent list, timelines and batch listing.
May import: ``ann``, ``text``, ``events``, the engine's shared ``access`` and ``rules``, and
``storage``. Never the domains built on memories (``entities``, ``graph``, ``vectors``,
``lifecycle``): they import this package, so it cannot import them.
"""
