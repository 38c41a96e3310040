"""Memory lifecycle: decay, TTL, feedback, deduplication, consolidation, compression, AutoPilot.

``Lifecycle`` (``core.py``) assembles the parts; the per-namespace policies they read (and the
rate-limit keys the request layer enforces) live in ``policies.py``. The decay *curve* recall
ranks with is ``memory/decay.py``; this package runs the jobs that persist decayed importance.
See each module's docstring for its contract.
May import: ``memory``, ``ann``, ``events``, ``access``, ``rules``, ``storage``.
"""
