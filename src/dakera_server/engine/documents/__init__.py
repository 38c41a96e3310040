"""Documents: files imported as chunk memories of an agent.

Owns: text extraction per media type (plain text, Markdown, HTML, PDF, DOCX) into blocks that
keep the document's structure (heading path, page), the limits that stop decompression bombs
before they cost memory, the chunker (sections at headings, then paragraphs, sentences, words,
within a token budget and with overlap), the import job (chunks stored through the memory
engine's batch path with the document record in the same transaction, linked in order with
``precedes`` edges) and the document list, detail and delete.
May import: ``graph`` (edges), ``attachments`` (imports from a stored file), ``memory``,
``tasks``, the engine's ``access`` and ``rules``, ``storage`` and ``errors``.
"""
