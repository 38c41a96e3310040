"""Namespace quotas: a default and per-namespace limits, their usage, and their enforcement.

A quota limits a namespace's records (``max_vectors``; ``max_memories`` is the same limit under
the name agent users expect, the lower of the two wins), its vector bytes (``max_storage_bytes``,
counted as records × dimension × 4, the same estimate ``GET /v1/namespaces/{ns}`` reports),
the vector dimension (``max_dimensions``) and the size of one record's metadata
(``max_metadata_bytes``, compact JSON). ``enforcement`` is ``hard`` (default: a write that would
break the quota is refused with 413 ``QUOTA_EXCEEDED`` and writes nothing), ``soft`` (the write
goes through and is counted as a breach) or ``none`` (usage is only reported).

Enforcement runs inside the write paths of the memory and vector engines, under the same lock
and before the same ``store.write`` as the write itself (``admit``), so two concurrent writes
cannot both squeeze under a limit, and a refused batch leaves nothing behind. A namespace
without its own quota gets the default one, if set. Quotas are one ``meta`` document
(``ops.quotas``); changes are ``quota_changed`` business events (audit log).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.rules import check_agent_id, check_namespace_name
from dakera_server.errors import InvalidInput, NotFound, QuotaExceeded
from dakera_server.storage.base import Op, Store

__all__ = ["ENFORCEMENTS", "QuotaBook", "QuotaConfig", "Usage", "check_quota_namespace"]

DOCUMENT = "ops.quotas"
DEFAULT_NAME = "_default"
ENFORCEMENTS = ("none", "soft", "hard")
LIMITS = (
    "max_vectors",
    "max_memories",
    "max_storage_bytes",
    "max_dimensions",
    "max_metadata_bytes",
)
MAX_LIMIT = 2**62


def check_quota_namespace(name: Any) -> str:
    """A data namespace or an agent's namespace (``_dakera_agent_<agent id>``)."""
    if isinstance(name, str) and name.startswith(AGENT_NAMESPACE_PREFIX):
        check_agent_id(name[len(AGENT_NAMESPACE_PREFIX) :], "namespace")
        return name
    return check_namespace_name(name, "namespace")


@dataclass(frozen=True)
class QuotaConfig:
    """The limits of one quota (``None`` = unlimited)."""

    max_vectors: int | None = None
    max_memories: int | None = None
    max_storage_bytes: int | None = None
    max_dimensions: int | None = None
    max_metadata_bytes: int | None = None
    enforcement: str = "hard"

    @classmethod
    def parse(cls, body: Any) -> QuotaConfig:
        """Validate a wire config (``{"config": {...}}`` or the bare object)."""
        if isinstance(body, Mapping) and set(body) == {"config"}:
            body = body["config"]
        if not isinstance(body, Mapping):
            raise InvalidInput("'config' must be an object of quota limits")
        unknown = sorted(set(body) - {*LIMITS, "enforcement"})
        if unknown:
            raise InvalidInput(
                f"unknown quota field(s) {', '.join(unknown)}; a quota has "
                + ", ".join((*LIMITS, "enforcement"))
            )
        values: dict[str, Any] = {}
        for name in LIMITS:
            value = body.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT:
                raise InvalidInput(f"'{name}' must be a whole number of at least 0, or null")
            values[name] = value
        enforcement = body.get("enforcement", "hard")
        if enforcement is None:
            enforcement = "hard"
        if not isinstance(enforcement, str) or enforcement.lower() not in ENFORCEMENTS:
            raise InvalidInput(f"'enforcement' must be one of {', '.join(ENFORCEMENTS)}")
        return cls(**values, enforcement=enforcement.lower())

    @property
    def record_limit(self) -> int | None:
        """The lower of ``max_vectors`` and ``max_memories``."""
        limits = [v for v in (self.max_vectors, self.max_memories) if v is not None]
        return min(limits) if limits else None

    def to_wire(self) -> dict[str, Any]:
        """The config object of the wire (every field, nulls included)."""
        return asdict(self)


@dataclass(frozen=True)
class Usage:
    """What a namespace holds now."""

    records: int
    dimension: int | None
    last_updated: int | None = None

    @property
    def storage_bytes(self) -> int:
        """Vector bytes: records × dimension × 4 (float32)."""
        return self.records * (self.dimension or 0) * 4

    def to_wire(self) -> dict[str, Any]:
        """``usage`` of a quota status (the contract's names and the Rust SDK's)."""
        return {
            "vector_count": self.records,
            "storage_bytes": self.storage_bytes,
            "avg_dimensions": float(self.dimension or 0),
            "last_updated": self.last_updated,
            "current_vectors": self.records,
            "current_storage_bytes": self.storage_bytes,
        }


def violations(
    config: QuotaConfig,
    records_after: int,
    dimension: int | None,
    metadata_sizes: Callable[[], Iterable[int]] | None = None,
) -> list[tuple[str, str]]:
    """``(quota field, why)`` for every limit a namespace in this state would break."""
    found: list[tuple[str, str]] = []
    limit = config.record_limit
    if limit is not None and records_after > limit:
        name = "max_vectors" if config.max_vectors == limit else "max_memories"
        found.append((name, f"{name} is {limit} and the namespace would hold {records_after}"))
    if config.max_dimensions is not None and dimension is not None:
        if dimension > config.max_dimensions:
            found.append(
                (
                    "max_dimensions",
                    f"max_dimensions is {config.max_dimensions} and the vectors have {dimension}",
                )
            )
    if config.max_storage_bytes is not None:
        needed = records_after * (dimension or 0) * 4
        if needed > config.max_storage_bytes:
            found.append(
                (
                    "max_storage_bytes",
                    f"max_storage_bytes is {config.max_storage_bytes} and the namespace's "
                    f"vectors would take {needed} bytes",
                )
            )
    if config.max_metadata_bytes is not None and metadata_sizes is not None:
        largest = max(metadata_sizes(), default=0)
        if largest > config.max_metadata_bytes:
            found.append(
                (
                    "max_metadata_bytes",
                    f"max_metadata_bytes is {config.max_metadata_bytes} and a record's "
                    f"metadata takes {largest} bytes",
                )
            )
    return found


class QuotaBook:
    """Every quota, their usage (through ``usage_of``) and the write-time check."""

    def __init__(
        self,
        store: Store,
        events: EventBus,
        usage_of: Callable[[str], Usage | None],
        namespaces: Callable[[], list[str]],
    ) -> None:
        self.store = store
        self.events = events
        self.usage_of = usage_of
        self.namespaces = namespaces
        self.default: QuotaConfig | None = None
        self.quotas: dict[str, QuotaConfig] = {}
        # Set by the engine: ids a namespace already holds (a check counts only new ones).
        self.known_ids: Callable[[str], Iterable[str]] = lambda _namespace: ()
        self.soft_breaches = 0
        self.refusals = 0
        self._lock = threading.Lock()

    def load(self) -> int:
        """Read the persisted quotas; returns how many namespaces have their own."""
        row = self.store.get_row("meta", DOCUMENT)
        if row is None:
            return 0
        document = orjson.loads(row.payload)
        default = document.get("default")
        self.default = None if default is None else QuotaConfig.parse(default)
        self.quotas = {
            name: QuotaConfig.parse(config)
            for name, config in dict(document.get("namespaces") or {}).items()
        }
        return len(self.quotas)

    def _save(self, default: QuotaConfig | None, quotas: dict[str, QuotaConfig]) -> None:
        document = {
            "default": None if default is None else default.to_wire(),
            "namespaces": {name: config.to_wire() for name, config in quotas.items()},
        }
        self.store.write([Op.put("meta", DOCUMENT, orjson.dumps(document))])
        self.default, self.quotas = default, quotas

    # ------------------------------------------------------------------ configuration
    def effective(self, namespace: str) -> tuple[QuotaConfig | None, str]:
        """The quota that applies to ``namespace`` and where it comes from
        (``namespace``, ``default`` or ``none``)."""
        own = self.quotas.get(namespace)
        if own is not None:
            return own, "namespace"
        if self.default is not None:
            return self.default, "default"
        return None, "none"

    def set_default(self, body: Any) -> QuotaConfig | None:
        """Replace the default quota (``null`` removes it)."""
        if isinstance(body, Mapping) and set(body) == {"config"} and body["config"] is None:
            body = None
        config = None if body is None else QuotaConfig.parse(body)
        with self._lock:
            self._save(config, dict(self.quotas))
        self.events.emit(
            "quota_changed",
            namespace=DEFAULT_NAME,
            details={"config": None if config is None else config.to_wire()},
        )
        return config

    def set(self, namespace: Any, body: Any) -> QuotaConfig:
        """Replace one namespace's quota."""
        name = check_quota_namespace(namespace)
        config = QuotaConfig.parse(body)
        with self._lock:
            self._save(self.default, {**self.quotas, name: config})
        self.events.emit("quota_changed", namespace=name, details={"config": config.to_wire()})
        return config

    def delete(self, namespace: str) -> bool:
        """Remove one namespace's quota (it falls back to the default); 404 when it had none."""
        with self._lock:
            if namespace not in self.quotas:
                raise NotFound(f"namespace '{namespace}' has no quota of its own", resource="quota")
            quotas = dict(self.quotas)
            del quotas[namespace]
            self._save(self.default, quotas)
        self.events.emit("quota_changed", namespace=namespace, details={"config": None})
        return True

    # ------------------------------------------------------------------ reporting
    def status(self, namespace: str) -> dict[str, Any]:
        """A quota status: config, usage, percentages, whether it is exceeded."""
        config, source = self.effective(namespace)
        usage = self.usage_of(namespace) or Usage(0, None)
        shown = config or QuotaConfig(enforcement="none")
        broken = violations(shown, usage.records, usage.dimension)
        limit = shown.record_limit
        return {
            "namespace": namespace,
            "config": shown.to_wire(),
            "source": source,
            "usage": usage.to_wire(),
            "vector_usage_percent": round(100.0 * usage.records / limit, 3) if limit else 0.0,
            "storage_usage_percent": round(100.0 * usage.storage_bytes / shown.max_storage_bytes, 3)
            if shown.max_storage_bytes
            else 0.0,
            "is_exceeded": bool(broken),
            "exceeded": [name for name, _ in broken],
        }

    def list(self) -> dict[str, Any]:
        """Every namespace with a quota of its own (and, with a default, every namespace)."""
        names = set(self.quotas)
        if self.default is not None:
            names.update(self.namespaces())
        statuses = [self.status(name) for name in sorted(names)]
        return {
            "quotas": statuses,
            "total": len(statuses),
            "default_config": None if self.default is None else self.default.to_wire(),
            "refusals": self.refusals,
            "soft_breaches": self.soft_breaches,
        }

    def check(
        self, namespace: str, vector_ids: Any, dimensions: Any = None, metadata_bytes: Any = None
    ) -> dict[str, Any]:
        """Would upserting ``vector_ids`` (of this dimension and metadata size) fit? Writes
        nothing."""
        if not isinstance(vector_ids, list) or not all(isinstance(i, str) for i in vector_ids):
            raise InvalidInput("'vector_ids' must be a list of ids")
        for field, value in (("dimensions", dimensions), ("metadata_bytes", metadata_bytes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInput(f"'{field}' must be a whole number")
        config, source = self.effective(namespace)
        usage = self.usage_of(namespace) or Usage(0, None)
        known = set(self.known_ids(namespace))
        new = len({i for i in vector_ids if i not in known})
        after = usage.records + new
        dimension = dimensions if dimensions is not None else usage.dimension
        sizes = (lambda: [metadata_bytes]) if metadata_bytes is not None else None
        broken = [] if config is None else violations(config, after, dimension, sizes)
        enforced = config is not None and config.enforcement == "hard"
        return {
            "allowed": not (broken and enforced),
            "namespace": namespace,
            "would_exceed": bool(broken),
            "exceeded": [name for name, _ in broken],
            "reason": "; ".join(why for _, why in broken) or None,
            "new_vectors": new,
            "resulting_vector_count": after,
            "enforcement": None if config is None else config.enforcement,
            "source": source,
            "usage": usage.to_wire(),
        }

    # ------------------------------------------------------------------ enforcement
    def admit(
        self,
        namespace: str,
        existing: int,
        added: int,
        dimension: int | None,
        metadata_sizes: Callable[[], Iterable[int]],
    ) -> None:
        """Called by the write paths under the namespace lock, before the durable write:
        raises ``QuotaExceeded`` when a hard quota would break.

        Record and byte limits refuse only writes that add records (replacing or updating
        records of a namespace already over a lowered limit stays possible); the dimension and
        metadata limits apply to every write."""
        config = self.quotas.get(namespace) or self.default
        if config is None or config.enforcement == "none":
            return
        broken = violations(config, existing + added, dimension, metadata_sizes)
        if added <= 0:
            broken = [b for b in broken if b[0] in ("max_dimensions", "max_metadata_bytes")]
        if not broken:
            return
        if config.enforcement == "soft":
            self.soft_breaches += 1
            return
        self.refusals += 1
        name, why = broken[0]
        raise QuotaExceeded(
            f"quota exceeded for namespace '{namespace}': {why}; nothing was written",
            details=f"quota: {name}",
        )
