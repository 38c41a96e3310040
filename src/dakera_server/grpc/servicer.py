"""``dakera.v1.VectorService``: the REST engine calls, over gRPC, with the REST scopes.

Each RPC names the REST route it mirrors in ``RPC_ROUTES``; its scope is looked up in the app's
route → scope table when the servicer is built (a missing route stops start-up), so the two
transports can never disagree about who may do what. Auth: the ``x-api-key`` metadata (or
``authorization: Bearer``) resolved by the same key ring as REST; missing or unknown keys are
``UNAUTHENTICATED``, a scope too low ``PERMISSION_DENIED``. Errors carry only the
``DakeraError`` message, as on REST.

Every call is counted in the same metrics registry as REST requests (method ``GRPC``, template
``/dakera.v1.VectorService/<Rpc>``, the namespace it names, the HTTP status its outcome maps
to), so analytics, KPIs and ``/metrics`` see both transports; and maintenance mode that refuses
requests refuses every RPC but ``Health`` (``UNAVAILABLE``), as REST answers 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import grpc
import orjson

from dakera_server import API_VERSION
from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.core import Engine
from dakera_server.engine.vectors.input import NewVector
from dakera_server.engine.vectors.scan import warm
from dakera_server.engine.vectors.search import QueryOptions, query
from dakera_server.engine.vectors.writes import delete_ids, upsert
from dakera_server.errors import DakeraError, Forbidden, InvalidInput, Unauthorized, Unavailable
from dakera_server.grpc.generated import vectors_pb2 as pb
from dakera_server.grpc.generated import vectors_pb2_grpc as pb_grpc

__all__ = ["RPC_ROUTES", "STATUS_CODES", "VectorServicer", "rpc_scopes"]

logger = logging.getLogger("dakera_server.grpc")

Reply = TypeVar("Reply")

# RPC → the REST route whose scope it shares.
RPC_ROUTES: dict[str, tuple[str, str]] = {
    "Health": ("GET", "/health"),
    "GetNamespace": ("GET", "/v1/namespaces/{namespace}"),
    "DeleteNamespace": ("DELETE", "/v1/namespaces/{namespace}"),
    "Upsert": ("POST", "/v1/namespaces/{namespace}/vectors"),
    "Query": ("POST", "/v1/namespaces/{namespace}/query"),
    "DeleteVectors": ("POST", "/v1/namespaces/{namespace}/vectors/delete"),
    "WarmCache": ("POST", "/v1/namespaces/{namespace}/cache/warm"),
}

GRPC_METHOD = "GRPC"
SERVICE_PATH = "/dakera.v1.VectorService/"

STATUS_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    421: grpc.StatusCode.PERMISSION_DENIED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def rpc_scopes(route_scopes: Mapping[tuple[str, str], Scope]) -> dict[str, Scope]:
    """Each RPC's scope, from the REST table; ``RuntimeError`` if a mirrored route is absent."""
    scopes = {}
    for rpc, route in RPC_ROUTES.items():
        if route not in route_scopes:
            raise RuntimeError(f"gRPC method {rpc} mirrors {route}, which is not served")
        scopes[rpc] = route_scopes[route]
    return scopes


def _metadata_json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class VectorServicer(pb_grpc.VectorServiceServicer):
    """The service implementation over one ``Engine``."""

    def __init__(
        self,
        engine: Engine,
        *,
        scopes: Mapping[str, Scope],
        authenticate: Callable[[str], Caller],
        auth_enabled: bool,
        anonymous: Caller,
        auth_disabled_caller: Caller,
    ) -> None:
        self.engine = engine
        self.scopes = dict(scopes)
        self.authenticate = authenticate
        self.auth_enabled = auth_enabled
        self.anonymous = anonymous
        self.auth_disabled_caller = auth_disabled_caller

    # --- plumbing ----------------------------------------------------------------------------
    def _caller(self, context: grpc.ServicerContext, rpc: str) -> Caller:
        scope = self.scopes[rpc]
        if not self.auth_enabled:
            return self.auth_disabled_caller
        metadata = {k.lower(): v for k, v in context.invocation_metadata() or ()}
        secret = metadata.get("x-api-key")
        bearer = metadata.get("authorization", "")
        if not secret and isinstance(bearer, str) and bearer[:7].lower() == "bearer ":
            secret = bearer[7:].strip()
        if scope is Scope.PUBLIC:
            return self.anonymous
        if not isinstance(secret, str) or not secret:
            raise Unauthorized("an API key is required (x-api-key metadata)")
        caller = self.authenticate(secret)
        if not caller.has(scope):
            raise Forbidden(f"this method needs the '{scope.wire}' scope")
        return caller

    def _run(
        self,
        context: grpc.ServicerContext,
        rpc: str,
        call: Callable[[Caller], Reply],
        namespace: str | None = None,
    ) -> Reply:
        started = time.perf_counter()
        status = 500
        try:
            caller = self._caller(context, rpc)
            if self.scopes[rpc] is not Scope.PUBLIC:
                if not self.engine.ready:
                    raise Unavailable("the server is starting; retry shortly")
                if self.engine.ops.maintenance.refusing():
                    raise Unavailable("the server is in maintenance mode; retry later")
            reply = call(caller)
            status = 200
            return reply
        except DakeraError as exc:
            status = exc.status
            code = STATUS_CODES.get(exc.status, grpc.StatusCode.INTERNAL)
            message = (
                exc.message if exc.status < 500 or exc.status in (501, 503) else "internal error"
            )
            context.abort(code, message)
        except Exception:  # the gRPC transport's outermost layer, like REST's 500 handler
            logger.exception("unhandled error in gRPC method %s", rpc)
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            self.engine.ops.metrics.observe(
                GRPC_METHOD,
                SERVICE_PATH + rpc,
                status,
                (time.perf_counter() - started) * 1000.0,
                namespace or None,
            )
        raise AssertionError("unreachable: context.abort raises")

    # --- RPCs --------------------------------------------------------------------------------
    def Health(self, request: Any, context: grpc.ServicerContext) -> Any:
        """``healthy`` once the indexes are loaded, ``starting`` before."""
        status = "healthy" if self.engine.ready else "starting"
        return self._run(
            context, "Health", lambda _c: pb.HealthResponse(status=status, version=API_VERSION)
        )

    def GetNamespace(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Name, vector count and dimension of a namespace the key may see."""

        def call(caller: Caller) -> Any:
            view = self.engine.namespaces.describe(caller, request.namespace)
            info = pb.NamespaceInfo(name=view.name, vector_count=view.vector_count)
            if view.dimension is not None:
                info.dimension = view.dimension
            return info

        return self._run(context, "GetNamespace", call, request.namespace)

    def DeleteNamespace(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Delete a namespace and all its data (admin)."""

        def call(caller: Caller) -> Any:
            self.engine.namespaces.delete(caller, request.namespace)
            return pb.DeleteNamespaceResponse(success=True)

        return self._run(context, "DeleteNamespace", call, request.namespace)

    def Upsert(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Insert or replace vectors (creates the namespace on first use)."""

        def call(caller: Caller) -> Any:
            items = [
                NewVector(
                    id=v.id,
                    values=list(v.values),
                    metadata=self._parse_metadata(v, i) if v.HasField("metadata_json") else None,
                )
                for i, v in enumerate(request.vectors)
            ]
            count = upsert(self.engine.namespaces, caller, request.namespace, items)
            return pb.UpsertResponse(upserted_count=count)

        return self._run(context, "Upsert", call, request.namespace)

    @staticmethod
    def _parse_metadata(vector: Any, index: int) -> Any:
        try:
            return orjson.loads(vector.metadata_json)
        except orjson.JSONDecodeError:
            raise InvalidInput(f"'vectors[{index}].metadata_json' is not valid JSON") from None

    def Query(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Top-k nearest vectors (``top_k`` 0 means the REST default, 10)."""

        def call(caller: Caller) -> Any:
            options = QueryOptions.parse(
                request.top_k or None, request.include_metadata, request.include_vectors
            )
            outcome = query(
                self.engine.namespaces,
                caller,
                request.namespace,
                list(request.vector),
                options=options,
                distance_metric=request.distance_metric or None,
            )
            return pb.QueryResponse(
                results=[
                    pb.ProtoSearchResult(
                        id=hit.id,
                        score=hit.score,
                        metadata_json=_metadata_json(hit.metadata),
                        values=hit.vector or [],
                    )
                    for hit in outcome.results[0]
                ]
            )

        return self._run(context, "Query", call, request.namespace)

    def DeleteVectors(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Delete vectors by id; unknown ids are skipped."""

        def call(caller: Caller) -> Any:
            count = delete_ids(self.engine.namespaces, caller, request.namespace, list(request.ids))
            return pb.DeleteVectorsResponse(deleted_count=count)

        return self._run(context, "DeleteVectors", call, request.namespace)

    def WarmCache(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Count what is (already) in memory: every vector is held in RAM."""

        def call(caller: Caller) -> Any:
            outcome = warm(
                self.engine.namespaces,
                caller,
                request.namespace,
                vector_ids=list(request.vector_ids) or None,
            )
            return pb.WarmCacheResponse(warmed_count=outcome.warmed)

        return self._run(context, "WarmCache", call, request.namespace)
