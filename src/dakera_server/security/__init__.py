"""Security layers (one pure ASGI class per module) and their helpers (keys, crypto)."""
