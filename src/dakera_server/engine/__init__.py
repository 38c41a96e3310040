"""The engine decides: memories, recall scoring, vectors, indexes, embeddings, graph, lifecycle.

One sub-package per domain; each ``__init__`` says what it owns and what it may import, and
``.importlinter`` (run by ``make lint``) enforces the directions, top to bottom:

    core                          wires every domain into one ``Engine`` (the app's only handle)
    ops                           metrics, analytics, quotas, slow queries, runtime config, upkeep
    lifecycle | graph | vectors   jobs over memories; the knowledge graph; vector namespaces
    entities                      entity extraction
    memory                        agent memories, recall, sessions
    keys                          API keys and their usage
    text | ann | events           embeddings + BM25; vector indexes; the event bus and audit log
    access | rules                who is calling (``Caller``, ``Scope``); shared input rules

The engine never imports ``api``, ``security``, ``grpc`` or a web framework; only ``storage``,
``errors`` and ``config`` types from outside itself.
"""
