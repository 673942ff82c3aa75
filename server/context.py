"""Per-call dependencies for tools, injected with ``Resolve`` so they never appear in input schemas."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, Resolve

from server.lifespan import AppState
from services.assets import AssetService
from services.errors import Unauthorized
from services.schemas import Caller
from services.universes import UniverseService

__all__ = ["Deps", "ToolDeps"]


@dataclass(slots=True)
class ToolDeps:
    state: AppState
    caller: Caller

    def unit_of_work(self):  # noqa: ANN201 - an async context manager yielding an AsyncSession
        return self.state.unit_of_work(owner_id=self.caller.owner_id)

    def universes(self, session, *, validator_enabled: bool = True) -> UniverseService:  # noqa: ANN001
        return UniverseService(
            session,
            self.caller,
            limits=self.state.limits,
            validator=self.state.validation if validator_enabled else None,
        )

    def assets(self, session) -> AssetService:  # noqa: ANN001
        return AssetService(
            session,
            self.state.validation,
            page_size_max=self.state.limits.page_size_max,
            viewer=self.caller.owner_id,
        )


def resolve_caller(state: AppState) -> Caller:
    """The caller of this request: the verified bearer token's owner, or the local user when auth is off."""
    token = get_access_token()
    if token is None:
        if state.settings.auth == "none":
            return state.local_caller
        # Over HTTP the SDK's middleware has already answered 401; this covers stdio and in-process use.
        raise Unauthorized("This server needs a bearer token.", hint="Send Authorization: Bearer <token>.")
    try:
        owner_id = uuid.UUID(token.subject or "")
    except ValueError:
        raise Unauthorized("The bearer token names no known owner.") from None
    return Caller(owner_id=owner_id, name=token.client_id, scopes=frozenset(token.scopes))


async def tool_deps(ctx: Context) -> ToolDeps:
    # async on purpose: the SDK runs sync resolvers on a worker thread, which costs more than the whole call.
    state: AppState = ctx.request_context.lifespan_context
    return ToolDeps(state=state, caller=resolve_caller(state))


Deps = Annotated[ToolDeps, Resolve(tool_deps)]
