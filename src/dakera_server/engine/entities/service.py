"""Entity extraction as a service: per-namespace configuration and the choice of extractor.

Every namespace starts with the built-in rule extractor switched on for every type (it is cheap
and needs nothing); ``PATCH/PUT /v1/namespaces/{ns}/config`` turns it off or narrows the types,
``PATCH /v1/namespaces/{ns}/extractor`` points the namespace at the ODE sidecar (GLiNER over
HTTP). Configuration applies to memories stored afterwards. A sidecar that fails while a memory
is stored does not fail the store: the memory gets the built-in extractor's entities instead.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import orjson

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX, Caller
from dakera_server.engine.entities.extractor import BUILTIN_EXTRACTOR, Entity, RuleExtractor
from dakera_server.engine.entities.sidecar import OdeClient, check_target
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.rules import check_agent_id, check_namespace_name
from dakera_server.errors import (
    FeatureDisabled,
    FeatureNotAvailable,
    InvalidInput,
    NamespaceNotFound,
    Unavailable,
)
from dakera_server.storage.base import Op, Store

__all__ = ["EntityConfig", "EntityService", "Extraction"]

logger = logging.getLogger("dakera_server.entities")

META_PREFIX = "entity-config:"
GLINER = "gliner"
PROVIDER_ALIASES = {
    "builtin-rules": BUILTIN_EXTRACTOR,
    "builtin": BUILTIN_EXTRACTOR,
    "rules": BUILTIN_EXTRACTOR,
    "gliner": GLINER,
    "ode": GLINER,
}
# Providers the SDK names that this server does not implement (answered 501, never faked).
UNAVAILABLE_PROVIDERS = ("openai", "anthropic", "openrouter", "ollama")
MAX_ENTITY_TYPES = 50
MAX_TYPE_LENGTH = 64


@dataclass(frozen=True)
class EntityConfig:
    """A namespace's extraction settings; ``entity_types`` empty = the extractor's defaults."""

    namespace: str
    extract_entities: bool = True
    entity_types: tuple[str, ...] = ()
    provider: str = BUILTIN_EXTRACTOR
    model: str | None = None
    base_url: str | None = None

    def ner_wire(self) -> dict[str, Any]:
        """``GET /v1/namespaces/{ns}/config`` (§4.6)."""
        return {
            "namespace": self.namespace,
            "extract_entities": self.extract_entities,
            "entity_types": list(self.entity_types),
        }

    def extractor_wire(self) -> dict[str, Any]:
        """``GET /v1/namespaces/{ns}/extractor`` (§4.6)."""
        return {
            "namespace": self.namespace,
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
        }


@dataclass(frozen=True)
class Extraction:
    """Entities of one text with the provider that produced them."""

    entities: list[Entity]
    provider: str
    model: str | None
    duration_ms: float
    warnings: list[str] = field(default_factory=list)


def check_entity_types(value: Any) -> tuple[str, ...]:
    """A list of type labels (kept as given, lower-cased: GLiNER takes free-form labels)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput("'entity_types' must be a list of strings")
    if len(value) > MAX_ENTITY_TYPES:
        raise InvalidInput(f"'entity_types' holds at most {MAX_ENTITY_TYPES} entries")
    types = []
    for label in value:
        label = label.strip().lower()
        if not label or len(label) > MAX_TYPE_LENGTH:
            raise InvalidInput(f"each entity type must be 1 to {MAX_TYPE_LENGTH} characters")
        types.append(label)
    return tuple(dict.fromkeys(types))


class EntityService:
    """Namespace extraction configs (persisted in ``meta``) and extraction entry points."""

    def __init__(
        self,
        store: Store,
        *,
        ode_url: str | None,
        ode_allow_private: bool,
        max_content_bytes: int,
    ) -> None:
        self.store = store
        self.ode_url = ode_url
        self.ode_allow_private = ode_allow_private
        self.max_content_bytes = max_content_bytes
        self.rules = RuleExtractor()
        self._configs: dict[str, EntityConfig] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget the namespace configs held in memory (before ``load`` after a restore)."""
        with self._lock:
            self._configs = {}

    def load(self) -> int:
        """Read the persisted namespace configs."""
        for row in self.store.iter_rows("meta"):
            if row.key.startswith(META_PREFIX):
                data = orjson.loads(row.payload)
                data["entity_types"] = tuple(data.get("entity_types") or ())
                config = EntityConfig(**data)
                self._configs[config.namespace] = config
        return len(self._configs)

    # ------------------------------------------------------------------ configuration
    def _visible(self, caller: Caller, namespace: Any) -> str:
        if isinstance(namespace, str) and namespace.startswith(AGENT_NAMESPACE_PREFIX):
            check_agent_id(namespace[len(AGENT_NAMESPACE_PREFIX) :], "namespace")
        else:
            check_namespace_name(namespace)
        if not caller.can_see(namespace):
            raise NamespaceNotFound(f"namespace '{namespace}' not found", resource="namespace")
        return str(namespace)

    def config_for(self, namespace: str) -> EntityConfig:
        """The namespace's settings (defaults when never configured); no access check."""
        with self._lock:
            return self._configs.get(namespace) or EntityConfig(namespace)

    def config(self, caller: Caller, namespace: Any) -> EntityConfig:
        """The settings of a namespace the caller may see."""
        return self.config_for(self._visible(caller, namespace))

    def _save(self, config: EntityConfig) -> EntityConfig:
        payload = orjson.dumps(asdict(config))
        self.store.write([Op.put("meta", META_PREFIX + config.namespace, payload)])
        with self._lock:
            self._configs[config.namespace] = config
        return config

    def configure_ner(
        self,
        caller: Caller,
        namespace: Any,
        extract_entities: Any,
        entity_types: Any,
        *,
        replace_all: bool,
    ) -> EntityConfig:
        """PATCH (merge: ``None`` keeps the types, ``[]`` clears) or PUT (full replace)."""
        current = self.config(caller, namespace)
        if not isinstance(extract_entities, bool):
            raise InvalidInput("'extract_entities' must be true or false")
        types = current.entity_types if entity_types is None and not replace_all else None
        if types is None:
            types = check_entity_types(entity_types)
        return self._save(replace(current, extract_entities=extract_entities, entity_types=types))

    def configure_extractor(
        self, caller: Caller, namespace: Any, provider: Any, model: Any, base_url: Any
    ) -> EntityConfig:
        """Set the namespace's default provider (``builtin-rules`` or ``gliner``)."""
        current = self.config(caller, namespace)
        name = self._provider(provider)
        if model is not None and (not isinstance(model, str) or len(model) > 200):
            raise InvalidInput("'model' must be a string of at most 200 characters")
        url = None
        if base_url is not None:
            if not isinstance(base_url, str):
                raise InvalidInput("'base_url' must be a URL string")
            url, _ = check_target(base_url, allow_private=self.ode_allow_private)
        if name == GLINER and url is None and self.ode_url is None:
            raise FeatureDisabled(
                "the GLiNER sidecar is not configured", details="set DAKERA_ODE_URL to enable it"
            )
        return self._save(replace(current, provider=name, model=model, base_url=url))

    @staticmethod
    def _provider(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput("'provider' must be a non-empty string")
        name = value.strip().lower()
        if name in UNAVAILABLE_PROVIDERS:
            raise FeatureNotAvailable(
                f"extraction provider '{name}' is not available on this server",
                details="providers: builtin-rules, gliner (ODE sidecar)",
            )
        if name not in PROVIDER_ALIASES:
            raise InvalidInput(f"unknown extraction provider '{name}'")
        return PROVIDER_ALIASES[name]

    # ------------------------------------------------------------------ extraction
    def _check_text(self, text: Any, name: str) -> str:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"'{name}' must be a non-empty string")
        if len(text.encode("utf-8")) > self.max_content_bytes:
            raise InvalidInput(f"'{name}' is longer than {self.max_content_bytes} UTF-8 bytes")
        return text

    def extract_builtin(self, content: Any, entity_types: Any) -> list[Entity]:
        """``POST /v1/memories/extract``: the built-in extractor on ad-hoc text (never writes)."""
        text = self._check_text(content, "content")
        return self.rules.extract(text, check_entity_types(entity_types))

    def extract(
        self, caller: Caller, text: Any, namespace: Any, provider: Any, model: Any
    ) -> Extraction:
        """``POST /v1/extract``: request override → namespace default → built-in rules."""
        checked = self._check_text(text, "text")
        config = EntityConfig("") if namespace is None else self.config(caller, namespace)
        name = self._provider(provider) if provider is not None else config.provider
        started = time.perf_counter()
        if name == GLINER:
            client = self._client(config)
            result = client.extract(checked, agent_id=config.namespace or "-", entity_types=None)
            return Extraction(result.entities, GLINER, result.model, result.duration_ms)
        entities = self.rules.extract(checked, config.entity_types)
        duration = (time.perf_counter() - started) * 1000.0
        return Extraction(entities, BUILTIN_EXTRACTOR, None, round(duration, 3))

    def _client(self, config: EntityConfig) -> OdeClient:
        base = config.base_url or self.ode_url
        if base is None:
            raise FeatureDisabled(
                "the GLiNER sidecar is not configured", details="set DAKERA_ODE_URL to enable it"
            )
        return OdeClient(base, allow_private=self.ode_allow_private)

    def for_memory(self, memory: Memory, namespace: str, *, remote: bool = True) -> list[Entity]:
        """Entities of a memory being stored, per its namespace's settings (never raises
        for a failing sidecar: the built-in extractor stands in; ``remote=False`` skips the
        sidecar, as start-up does so that a dead sidecar cannot stall it)."""
        config = self.config_for(namespace)
        if not config.extract_entities:
            return []
        if config.provider == GLINER and remote:
            try:
                client = self._client(config)
                return client.extract(
                    memory.content,
                    agent_id=memory.agent_id,
                    memory_id=memory.id,
                    entity_types=list(config.entity_types) or None,
                ).entities
            except (Unavailable, FeatureDisabled) as exc:
                logger.warning("entity sidecar failed for %s: %s", namespace, exc.message)
        return self.rules.extract(memory.content, config.entity_types)
