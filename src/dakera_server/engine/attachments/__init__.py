"""Attachments: raw files per namespace, content-addressed by SHA-256.

Owns: the attachment store (upload as a stream, list, download as a stream, delete with 409
while referenced, garbage collection when the last referencing memory goes), the check of a
declared media type against the bytes (``sniff``), and the sealing of stored bytes with
AES-256-GCM under a per-attachment key when encryption at rest is on (``sealing``).
May import: ``memory`` (references from memories, the agent namespace rule), the engine's
``access`` and ``rules``, ``storage`` (records and blobs) and ``errors``.
"""
