"""Routers of administration: API keys, namespace policies, encryption rotation, the audit log."""
