"""The doctor's report: one ``Finding`` per checklist item, the ``Report``, and its table.

Split from ``doctor.py`` (which judges) so the checks and their presentation stay small; the
CLI rebuilds a ``Report`` from a running server's JSON with ``from_wire``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "FAIL",
    "MANUAL",
    "PASS",
    "RECOMMENDED",
    "REQUIRED",
    "UNKNOWN",
    "Finding",
    "Report",
    "render_table",
]

REQUIRED, RECOMMENDED = "Required", "Recommended"
PASS, FAIL, MANUAL, UNKNOWN = "pass", "fail", "manual", "unknown"


@dataclass(frozen=True)
class Finding:
    """One checklist item: ``status`` is pass, fail, manual (not observable) or unknown."""

    id: str
    item: str
    priority: str
    status: str
    detail: str


@dataclass(frozen=True)
class Report:
    """Every finding, in checklist order."""

    findings: tuple[Finding, ...]

    @property
    def required_failed(self) -> list[str]:
        """Ids of the Required items that failed or could not be judged (the exit code of
        ``doctor``): a self-check that cannot see an item must not call it passed."""
        return [
            f.id for f in self.findings if f.priority == REQUIRED and f.status in (FAIL, UNKNOWN)
        ]

    @property
    def passed(self) -> bool:
        """No Required item failed."""
        return not self.required_failed

    def to_wire(self) -> dict[str, Any]:
        """The JSON form of ``GET /v1/admin/doctor``."""
        return {
            "passed": self.passed,
            "required_failed": self.required_failed,
            "checks": [asdict(f) for f in self.findings],
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Report:
        """Inverse of ``to_wire`` (the CLI reads a running server's report)."""
        names = Finding.__dataclass_fields__
        return cls(tuple(Finding(**{k: str(c[k]) for k in names}) for c in data["checks"]))


def render_table(report: Report) -> str:
    """A fixed-width table for a terminal, and a last line that says whether it passed."""
    rows = [("ITEM", "PRIORITY", "STATUS", "DETAIL")]
    rows += [(f.item, f.priority, f.status.upper(), f.detail) for f in report.findings]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        for row in rows
    ]
    failed = report.required_failed
    lines.append(
        "\nall Required items pass"
        if not failed
        else f"\n{len(failed)} Required item(s) failed: {', '.join(failed)}"
    )
    return "\n".join(lines)
