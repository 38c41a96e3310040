"""Named dependencies handlers receive: the engine and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from dakera_server.api.scopes import current_caller
from dakera_server.engine.access import Caller
from dakera_server.engine.core import Engine

__all__ = ["CallerDep", "EngineDep"]


# async on purpose: FastAPI runs sync dependencies in a worker thread, which costs two thread
# hand-offs per dependency per request for what is only an attribute lookup.
async def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def _caller(request: Request) -> Caller:
    return current_caller(request)


EngineDep = Annotated[Engine, Depends(_engine)]
CallerDep = Annotated[Caller, Depends(_caller)]
