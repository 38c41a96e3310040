"""Vector namespaces: raw vectors, text embedded on the server, BM25 full text, hybrid search.

Owns: ``NamespaceEngine`` (create, configure, delete namespaces; load them from the store and
their index snapshots), upserts and deletes, query / text / hybrid / batch search, scans and
exports, filters (the filter language), and the input checks of every vector route.
May import: ``memory`` (agent namespaces appear in the namespace list), ``ann``, ``text``,
``events``, ``access``, ``rules`` and ``storage``.
"""
