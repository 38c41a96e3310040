"""Following the shared store: a node's caches catch up with what other nodes committed.

Only a store shared by several processes (PostgreSQL: ``Store.change_log`` is not ``None``)
gets a ``Follower``; on the embedded SQLite store nothing here runs. Before a read of an agent
or a namespace, the node compares that change group's head with its cursor and applies the
changes in between (``follower.py``); ``LISTEN`` notices only wake a background thread that
does the same ahead of the next request. Which cached parts are followed is listed in
docs/scale-out.md. ``pruning.py`` keeps the log to an hour (once per cluster).

May import memory, vectors, keys (the caches it refreshes) and ``storage``/``errors``; only
``core`` imports it.
"""
