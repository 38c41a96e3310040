"""Records: a vector namespace entry with named extra representations (dakera-api.md §5.1).

Owns: validation and packing of representations (``dense``, ``token_multivector``,
``patch_multivector``; stored as ``f32``, ``f16`` or ``i8``), their rows in the
``representations`` table, written in the same transaction as the record's primary vector
(which ``vectors`` indexes and searches like any other), and the record view.
May import: ``vectors``, the engine's ``access`` and ``rules``, ``storage`` and ``errors``.
"""
