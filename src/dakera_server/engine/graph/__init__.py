"""The knowledge graph over an agent's memories.

Owns: edges and per-agent graphs (``model``), the store hooks that derive ``related_to`` and
``shares_entity`` edges (``knowledge_graph``), loading and the start-up entity backfill
(``load``), traversal and path queries (``queries``), the knowledge routes' operations
(``knowledge``) and extractive summaries (``summaries``).
May import: ``entities``, ``memory``, ``ann``, ``events``, ``access``, ``rules``, ``storage``.
"""
