"""Regenerate the README's environment table from ``dakera_server.config.table.SETTINGS``.

Run with ``make docs``; ``tests/test_config.py`` fails when the README drifts from the code.
"""

from __future__ import annotations

import re
from pathlib import Path

from dakera_server.config import environment_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- env-table:start -->", "<!-- env-table:end -->"


def main() -> None:
    text = README.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    README.write_text(pattern.sub(f"{START}\n{environment_table()}\n{END}", text))


if __name__ == "__main__":
    main()
