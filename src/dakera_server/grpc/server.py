"""Starting and stopping the gRPC server inside the REST server's process.

The REST app's lifespan calls ``GrpcServer.start`` and ``stop``, so both transports share one
``Engine`` (one store, one set of indexes) and one key ring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import grpc

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.core import Engine
from dakera_server.grpc.codegen import ensure

if TYPE_CHECKING:
    from dakera_server.grpc.servicer import VectorServicer

__all__ = ["GrpcServer", "create_grpc_server"]

logger = logging.getLogger("dakera_server.grpc")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
WORKERS = 8


class GrpcServer:
    """One ``grpc.Server`` bound to ``host:port`` (port 0: a free one, see ``port``)."""

    def __init__(self, servicer: VectorServicer, *, host: str, port: int) -> None:
        self.servicer = servicer
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._server: grpc.Server | None = None

    def start(self) -> int | None:
        """Bind and serve; returns the bound port.

        A port already in use does not stop the REST server: it is logged as an error and gRPC
        stays off (``port`` is ``None``), so one busy port cannot take the whole API down.
        """
        from dakera_server.grpc.generated import vectors_pb2_grpc as pb_grpc

        server = grpc.server(
            ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="dakera-grpc"),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # Without this, Linux lets a second server bind the same port and steal calls.
                ("grpc.so_reuseport", 0),
            ],
        )
        pb_grpc.add_VectorServiceServicer_to_server(self.servicer, server)  # type: ignore[no-untyped-call]
        address = f"{self.host}:{self.requested_port}"
        try:
            port = int(server.add_insecure_port(address))
        except RuntimeError:
            port = 0
        if port == 0:
            logger.error(
                "gRPC is OFF: cannot listen on %s (port in use?). Set DAKERA_GRPC_PORT to a free "
                "port, or DAKERA_GRPC_ENABLED=false to silence this.",
                address,
            )
            return None
        server.start()
        self._server = server
        self.port = port
        logger.info("gRPC dakera.v1.VectorService listening on %s:%d", self.host, port)
        return port

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let running ones finish for ``grace`` seconds."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None


def create_grpc_server(
    engine: Engine,
    *,
    route_scopes: Mapping[tuple[str, str], Scope],
    authenticate: Callable[[str], Caller],
    auth_enabled: bool,
    anonymous: Caller,
    auth_disabled_caller: Caller,
    host: str,
    port: int,
) -> GrpcServer:
    """The gRPC server over ``engine``; each RPC gets the scope of the REST route it mirrors.

    The generated code is imported here, not at module import, so a server with gRPC disabled
    never needs it (and a source checkout generates it once, see ``codegen.ensure``).
    """
    ensure()
    from dakera_server.grpc.servicer import VectorServicer, rpc_scopes

    servicer = VectorServicer(
        engine,
        scopes=rpc_scopes(route_scopes),
        authenticate=authenticate,
        auth_enabled=auth_enabled,
        anonymous=anonymous,
        auth_disabled_caller=auth_disabled_caller,
    )
    return GrpcServer(servicer, host=host, port=port)
