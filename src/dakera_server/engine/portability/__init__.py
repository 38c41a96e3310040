"""Data that can leave and come back: online backups, restore, import and export.

Owns: the backup file format (``container``), which store rows a backup holds (``sections``),
the backups directory and scheduled backups (``backups``, ``schedule``), restore jobs and the
maintenance gate that keeps requests out while one runs (``restore``, ``gate``), import
formats and jobs (``formats``, ``imports``) and exports (``exports``); ``service`` wires them
over one store for ``Engine``.

May import: ``memory`` (the batch write path, listing), ``events`` (business events),
``access`` and ``rules``, plus ``storage`` (the ``Store.snapshot``/``write_stream`` contract)
and ``errors``. Whole-engine actions it needs (stop background work, reload every index after
a restore) are callbacks handed in by ``core``, which sits above it.
"""
