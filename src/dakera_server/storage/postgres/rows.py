"""Reading rows, shared by ordinary reads (``store.py``) and backup snapshots
(``snapshot.py``): which table names may reach SQL, the ``SELECT`` of a table or one group of
it, and decoding a fetched row with the codec that was current when it was read."""

from __future__ import annotations

from typing import Any

from dakera_server.errors import StorageError
from dakera_server.storage.base import IdentityCodec, PayloadCodec, StoredRow, Table
from dakera_server.storage.postgres.reencode import PLAIN_META_PREFIX
from dakera_server.storage.postgres.schema import DATA_TABLES

__all__ = ["META_SELECT", "checked_table", "decode_meta", "decode_row", "table_query"]

META_SELECT = "SELECT key, value FROM dakera.meta"
_IDENTITY = IdentityCodec()


def checked_table(table: str) -> str:
    """Table names are interpolated into SQL, so only the declared ones pass."""
    if table != "meta" and table not in DATA_TABLES:
        raise StorageError(f"unknown table {table!r}")
    return table


def table_query(columns: str, table: str, group: str | None) -> tuple[str, tuple[Any, ...]]:
    """``SELECT columns`` of a data table, of one group when ``group`` is given."""
    sql = f"SELECT {columns} FROM dakera.{checked_table(table)}"
    if group is None:
        return sql, ()
    return sql + " WHERE grp = %s", (group,)


def decode_meta(codec: PayloadCodec, key: str, value: bytes) -> StoredRow:
    """A meta row; ``plain:*`` rows are never sealed."""
    meta_codec = _IDENTITY if key.startswith(PLAIN_META_PREFIX) else codec
    return StoredRow("meta", key, "", meta_codec.decode("meta", key, bytes(value)))


def decode_row(
    codec: PayloadCodec, table: Table, grp: str, key: str, payload: bytes, vector: bytes | None
) -> StoredRow:
    """A data row, payload and vector decoded with ``codec``."""
    record_id = f"{grp}/{key}"
    return StoredRow(
        table,
        key,
        grp,
        codec.decode(table, record_id, bytes(payload)),
        None if vector is None else codec.decode(table + ".vector", record_id, bytes(vector)),
    )
