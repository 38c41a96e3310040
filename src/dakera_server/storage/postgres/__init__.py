"""The PostgreSQL store: the truth and the change log of several server processes.

Selected by ``DAKERA_STORAGE_URL=postgresql://…`` (``storage/factory.py``); psycopg 3 with a
connection pool. Modules: ``connect`` (pool, URL without password), ``errors`` (driver errors
→ error tree), ``schema`` (versioned migrations under an advisory lock), ``store``
(``PostgresStore``), ``changes`` (reading the change log, LISTEN), ``eventlog`` (business
events), ``blobs`` (attachment files, ``PostgresBlobStore``), ``rows`` (table names, queries and
decoding shared by reads and snapshots), ``snapshot`` (online backups and restores).

Store API (the ``Store`` contract of ``storage/base.py``, plus):

* ``PostgresStore(url, codec=None)`` connects, migrates the ``dakera`` schema and is ready;
  ``Unavailable`` when the database cannot be reached.
* ``commit(ops) -> dict[group, GroupCommit]``: ``write`` that also returns, per change group
  touched, the head before and after (``GroupCommit(group, previous, seq)``).
* ``change_log`` → ``PostgresChangeLog``; ``describe()`` → ``postgresql user@host:port/db``.
* ``reencode`` / ``scrub`` (key rotation, in-place encryption, ``VACUUM FULL``).
* Every read and write first runs ``dakera.begin_access(fingerprint, checked)``: a shared
  advisory lock that a rotation takes exclusively, and a check that the caller's codec
  fingerprint is the store's (``CodecChanged``, a 503, otherwise: a node still holding a
  rotated-out key can neither write under it nor misread new rows).

Change log (``ChangeLog`` of ``storage/base.py``):

* Every ``write`` commits, in its own transaction, one record per operation in
  ``dakera.changes`` (``group``, ``seq``, ``ordinal``, ``table``, ``row_group``, ``key``,
  ``op``) and bumps ``dakera.change_heads`` for each change group it touches, then
  ``NOTIFY dakera_changes`` with ``{"group": g, "seq": s}`` per group (sent at commit only).
* Groups (``change_group``): ``agent/<id>`` (memories, sessions, edges, trash),
  ``namespace/<name>`` (vectors and the namespace's own record), ``keys/key`` and
  ``keys/usage`` (API keys and their usage counters), ``meta`` (policies, lifecycle state,
  entity configuration, the encryption record).
* Numbers come from one sequence; within a group they increase in commit order (the head row
  is locked from the bump to the commit) but are not contiguous. Once ``head(g)`` has returned
  ``s``, every change of ``g`` up to ``s`` is committed and readable and none below ``s`` can
  appear later, so catching up is exact: ``h = head(g)``; ``changes_after(g, cursor)`` until
  ``h``; ``cursor = h``. ``changes_after`` answers ``None`` when records above the cursor were
  pruned (``prune(n)``): reload the group's rows.
* ``heads(groups)`` reads several heads in one round trip; ``latest()`` and
  ``changes_since(seq)`` scan all groups (a hint after a lost connection, never a cursor:
  across groups numbers are not in commit order).
* ``listen()`` → ``PostgresChangeListener`` on its own connection: ``wait(timeout)`` returns
  ``ChangeNotice(group, seq)`` wake-ups, raising ``Unavailable`` when the connection dropped
  (then notices may have been lost: compare heads and catch up).
"""

from __future__ import annotations

from dakera_server.storage.postgres.blobs import PostgresBlobStore
from dakera_server.storage.postgres.changes import PostgresChangeListener, PostgresChangeLog
from dakera_server.storage.postgres.connect import describe_url
from dakera_server.storage.postgres.errors import CodecChanged, map_postgres_errors
from dakera_server.storage.postgres.eventlog import PostgresEventLog
from dakera_server.storage.postgres.store import PostgresStore

__all__ = [
    "CodecChanged",
    "PostgresBlobStore",
    "PostgresChangeListener",
    "PostgresChangeLog",
    "PostgresEventLog",
    "PostgresStore",
    "describe_url",
    "map_postgres_errors",
]
