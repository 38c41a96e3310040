"""Routers of vector namespaces: namespace admin, raw vectors, text with server-side embedding,
full-text and hybrid search, and the advanced query forms, with their wire models."""
