"""API keys: records, secret hashing rules, the durable key store and usage counters.

Owns: ``KeyStore`` (create, list, rotate, revoke, authenticate by hash), ``KeyRecord`` and
grants, secret generation and hashing (``rules``), and per-key usage counters flushed in
batches (``usage``). The request layer (``security/keys.py``) builds on it.
May import: ``events``, ``access``, ``storage``.
"""
