"""Entity extraction: which people, places, dates and things a memory mentions.

Owns: the built-in rule extractor and its lexicon and name finder (``extractor``, ``lexicon``,
``names``), the optional HTTP extraction sidecar client (``sidecar``), and the service that
picks the extractor per namespace and stores what it found (``service``).
May import: ``memory`` (the ``Memory`` record), ``access``, ``rules``, ``storage``.
"""
