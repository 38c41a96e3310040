"""Runtime configuration: the settings that may change while the server runs.

Each ``Knob`` names one setting that is safe to change live — it is read afresh by the code that
uses it (session expiry, the scheduler, the slow-query log …), so a change applies from the
next request or cycle without a restart. Everything else in the settings table (ports, data
directory, keys, security headers …) is fixed for the life of the process, and a request to
change it is refused with the list of what can change.

A change is validated whole before anything is applied (all or nothing), persisted as one
``meta`` document (``ops.runtime_config``) so it survives a restart (where it overrides the
environment), and emitted as a ``config_changed`` business event, which the audit log keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from dakera_server.engine.events.bus import EventBus
from dakera_server.errors import InvalidInput
from dakera_server.storage.base import Op, Store

__all__ = ["Knob", "RuntimeConfig", "bool_knob", "number_knob"]

DOCUMENT = "ops.runtime_config"


@dataclass(frozen=True)
class Knob:
    """One live setting: how to check a new value, read the current one and apply it.

    ``persist`` is False for a setting whose owner already keeps it durably (the AutoPilot
    switch lives in the AutoPilot configuration), so a later change made there is not undone by
    a stale override at the next start.
    """

    name: str
    help: str
    check: Callable[[Any], Any]
    get: Callable[[], Any]
    apply: Callable[[Any], None]
    persist: bool = True


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def number_knob(
    name: str,
    help: str,
    get: Callable[[], Any],
    apply: Callable[[Any], None],
    *,
    low: float,
    high: float,
    integer: bool = True,
    persist: bool = True,
) -> Knob:
    """A knob holding a number from ``low`` to ``high``."""

    def check(value: Any) -> Any:
        wrong_type = isinstance(value, bool) or not isinstance(value, int | float)
        if integer and not wrong_type and not float(value).is_integer():
            wrong_type = True
        if wrong_type or not low <= value <= high:
            kind = "a whole number" if integer else "a number"
            raise InvalidInput(f"'{name}' must be {kind} from {_number(low)} to {_number(high)}")
        return int(value) if integer else float(value)

    return Knob(name, help, check, get, apply, persist)


def bool_knob(
    name: str,
    help: str,
    get: Callable[[], Any],
    apply: Callable[[Any], None],
    *,
    persist: bool = True,
) -> Knob:
    """A knob holding true or false."""

    def check(value: Any) -> Any:
        if not isinstance(value, bool):
            raise InvalidInput(f"'{name}' must be true or false")
        return value

    return Knob(name, help, check, get, apply, persist)


class RuntimeConfig:
    """The live settings, their persisted overrides, and audited changes."""

    def __init__(
        self, store: Store, events: EventBus, knobs: list[Knob], fixed: Mapping[str, str]
    ) -> None:
        self.store = store
        self.events = events
        self.knobs = {knob.name: knob for knob in knobs}
        # Setting names that exist but cannot change live → the environment variable to use.
        self.fixed = dict(fixed)
        self.overrides: dict[str, Any] = {}

    def load(self) -> int:
        """Apply the persisted overrides (start-up); returns how many were applied."""
        row = self.store.get_row("meta", DOCUMENT)
        if row is None:
            return 0
        saved = orjson.loads(row.payload)
        applied = 0
        for name, value in (saved if isinstance(saved, dict) else {}).items():
            knob = self.knobs.get(name)
            if knob is None or not knob.persist:
                continue
            try:
                knob.apply(knob.check(value))
            except InvalidInput:
                continue  # an override a newer build no longer accepts: the environment wins
            self.overrides[name] = value
            applied += 1
        return applied

    def current(self) -> dict[str, Any]:
        """Every live setting's current value."""
        return {name: knob.get() for name, knob in sorted(self.knobs.items())}

    def describe(self) -> dict[str, str]:
        """Live setting → what it does."""
        return {name: knob.help for name, knob in sorted(self.knobs.items())}

    def update(self, changes: Any, *, actor: str | None = None) -> dict[str, dict[str, Any]]:
        """Validate every change, then apply, persist and audit them; returns
        ``{name: {"old", "new"}}`` of the settings that changed."""
        if not isinstance(changes, Mapping) or not changes:
            raise InvalidInput(
                "send a JSON object of settings to change; these can change at runtime: "
                + ", ".join(sorted(self.knobs))
            )
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            knob = self.knobs.get(str(name))
            if knob is None:
                hint = self.fixed.get(str(name))
                why = (
                    f"'{name}' cannot change while the server runs (set {hint} and restart)"
                    if hint
                    else f"'{name}' is not a runtime setting"
                )
                raise InvalidInput(
                    f"{why}; these can change at runtime: {', '.join(sorted(self.knobs))}"
                )
            checked[knob.name] = knob.check(value)
        changed: dict[str, dict[str, Any]] = {}
        for name, value in checked.items():
            old = self.knobs[name].get()
            if old != value:
                changed[name] = {"old": old, "new": value}
        overrides = dict(self.overrides)
        overrides.update({n: v for n, v in checked.items() if self.knobs[n].persist})
        # Persist first: if the write fails nothing was applied; once it succeeded, applying
        # cannot fail (every value was checked above).
        self.store.write([Op.put("meta", DOCUMENT, orjson.dumps(overrides))])
        self.overrides = overrides
        for name, value in checked.items():
            self.knobs[name].apply(value)
        if changed:
            self.events.emit(
                "config_changed", details={"changes": changed, **({"by": actor} if actor else {})}
            )
        return changed
