"""Text: embedding providers (built-in MiniLM, OpenAI-compatible HTTP) and BM25 full text.

Owns: the ``EmbeddingProvider`` interface and its factory, the numpy MiniLM and its parallel
batch runner, the ``MicroBatcher`` that merges concurrent requests' texts into shared forward
passes, the BLAS/embedding thread settings, and the tantivy-backed ``FullTextIndex``.
May import: ``errors`` only (and ``config`` types): it knows nothing of memories or namespaces.
"""
