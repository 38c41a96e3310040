"""Business events: the in-process bus every engine part emits to, and the durable audit log.

Owns: ``EventBus`` (bounded subscriber queues; a slow reader loses events, never the writer)
and ``AuditLog`` (persists bus events in batches, lists, exports and streams them).
May import: ``access`` and ``storage``: every other domain emits here, so it imports none of them.
"""
