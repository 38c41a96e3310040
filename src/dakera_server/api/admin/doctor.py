"""``GET /v1/admin/doctor``: the production self-check of ``security/doctor/checks.py`` as JSON.

Judged on the running server's own settings and key store, the process it runs in, and how
this very request arrived (through a trusted proxy over HTTPS, or not), so an operator who asks
through the public URL learns whether that URL is served the way the checklist requires.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from dakera_server.api.deps import EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.security.doctor.checks import examine
from dakera_server.security.doctor.facts import gather
from dakera_server.security.proxy import PROXIED

routes = Routes()


@routes.get("/v1/admin/doctor", scope=Scope.SUPER_ADMIN, unrestricted=True)
async def doctor(engine: EngineDep, request: Request) -> dict[str, Any]:
    client = request.scope.get("client")
    facts = await asyncio.to_thread(
        gather,
        engine.keys,
        request_scheme=request.scope.get("scheme", "http"),
        request_proxied=bool(request.scope.get("state", {}).get(PROXIED)),
        request_peer=client[0] if client else None,
    )
    return examine(request.app.state.settings, facts).to_wire()
