"""``Setting``: one environment variable of the settings table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Setting"]


@dataclass(frozen=True)
class Setting:
    """One environment variable: its field on ``Settings``, parser, default and help line."""

    env: str
    attr: str
    parse: Callable[[str, str], Any]
    default: Any
    help: str
    secret: bool = False
