"""The engine decides: memories, recall scoring, vectors, indexes, embeddings, graph, lifecycle.

One sub-package per domain; each ``__init__`` says what it owns and what it may import, and
``.importlinter`` (run by ``make lint``) enforces the directions, top to bottom:

    core                          wires every domain into one ``Engine`` (the app's only handle)
    portability | ops             backups, restore, import and export; metrics, analytics,
                                  quotas, slow queries, runtime config, upkeep
    follow                        catching caches up with other nodes' commits (shared store)
    documents | media | records   document import; transcription/indexing jobs; records
    attachments                   files per namespace (streamed, sealed at rest)
    lifecycle | graph | vectors   jobs over memories; the knowledge graph; vector namespaces
    entities                      entity extraction
    memory | keys                 agent memories, recall, sessions; API keys and their usage
    text | ann | events | tasks   embeddings + BM25; vector indexes; event bus and audit log;
                                  background jobs of the job routes
    access | rules                who is calling (``Caller``, ``Scope``); shared input rules

The engine never imports ``api``, ``security``, ``grpc`` or a web framework; only ``storage``,
``errors`` and ``config`` types from outside itself.
"""
