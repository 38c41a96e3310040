"""The engine decides: memories, recall scoring, vectors, indexes, embeddings, graph, lifecycle."""
