"""The settings table: every environment variable declared once, with its parser and help.

The README's environment table is generated from ``SETTINGS`` (``environment_table``) and a test
fails when the two drift apart; ``Settings.from_env`` reads exactly these variables. The entries
are declared by topic in ``table_server.py``, ``table_protection.py`` and ``table_features.py``.
"""

from __future__ import annotations

from dakera_server.config.setting import Setting
from dakera_server.config.table_features import FEATURES
from dakera_server.config.table_protection import PROTECTION
from dakera_server.config.table_server import SERVER

__all__ = ["SETTINGS", "Setting", "environment_table"]

SETTINGS: tuple[Setting, ...] = (*SERVER, *PROTECTION, *FEATURES)


def environment_table() -> str:
    """The README's environment table, generated from ``SETTINGS``."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        default = "(unset)" if setting.default is None else f"`{setting.default}`"
        rows.append(f"| `{setting.env}` | {default} | {setting.help} |")
    return "\n".join(rows)
