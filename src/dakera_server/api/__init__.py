"""HTTP routers: each parses a request, makes one engine call and shapes the answer.

Shared here: ``deps`` (the ``Annotated`` dependencies), ``scopes`` (the scope each route
declares and the table built from them), ``errors`` (handlers), ``bodies``, ``sse``,
``routeorder`` and the health probes. The routers themselves are grouped by area in
``memories/``, ``vectors/`` and ``admin/``.
"""
