"""Settings: one declared table, read from the environment once, validated, frozen.

``settings`` holds the only code that reads ``os.environ`` (``Settings.from_env``). Each setting
is declared once in ``table.SETTINGS`` with its variable name, type, default and help; the
README's environment table is generated from it and a test fails when the two drift apart.
``parsers`` turns raw strings into typed values with errors that name the variable and the fix.
"""

from __future__ import annotations

from dakera_server.config.parsers import HEX_KEY, check_encryption_key
from dakera_server.config.settings import Settings
from dakera_server.config.table import SETTINGS, Setting, environment_table

__all__ = [
    "HEX_KEY",
    "SETTINGS",
    "Setting",
    "Settings",
    "check_encryption_key",
    "environment_table",
]
