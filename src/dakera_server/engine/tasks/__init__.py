"""Background tasks of the v0.12 job routes: document imports, transcriptions, image indexing.

Owns: ``TaskRunner`` (a bounded queue, a few worker threads, the in-memory task list) and
``Task`` with the job object of dakera-api.md §5.1 (``status`` ``Pending|Running|Completed|
Failed|Cancelled``, ``progress`` 0-100, ``metadata``, ``error: {status, code}``). Tasks live in
memory, as the contract says (``JOB_NOT_FOUND`` after a restart); what a completed task stored
is durable like any other write.
May import: ``errors`` only. It is a leaf every domain above may use.
"""
