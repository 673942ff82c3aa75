"""Who is calling and whether they may: per-call dependencies for tools (injected with ``Resolve`` so they never
appear in input schemas) and admission (token scopes, per-owner rate limits) for every entry point."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, Resolve
from sqlalchemy.ext.asyncio import AsyncSession

from core.wiring import AppState
from services.assets import AssetService
from services.errors import Forbidden, RateLimited, Unauthorized
from services.jobs import JobDesk
from services.online_search import OnlineSearch
from services.rebalancing import DynamicUniverses
from services.schemas import Caller
from services.screening import ScreeningService
from services.universes import UniverseService
from services.validation_api import SymbolCheck, SymbolValidator

__all__ = ["AppContext", "Deps", "ToolDeps", "admit", "resolve_caller"]

# The SDK's context of a request to this server: its lifespan context is the AppState (core/wiring.py).
AppContext = Context[AppState, Any]


@dataclass(slots=True)
class ToolDeps:
    state: AppState
    caller: Caller

    def unit_of_work(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self.state.unit_of_work(owner_id=self.caller.owner_id)

    def universes(self, session: AsyncSession, *, validator_enabled: bool = True) -> UniverseService:
        return UniverseService(
            session,
            self.caller,
            limits=self.state.limits,
            validator=AdmittedValidator(self.state.validation, self.state, self.caller) if validator_enabled else None,
        )

    def dynamic(self, session: AsyncSession) -> DynamicUniverses:
        """Dynamic universes: create from rules, redefine, freeze, rebalance."""
        return DynamicUniverses(session, self.caller, limits=self.state.limits)

    def jobs(self) -> JobDesk:
        """The caller's jobs: start, status, cancel (each opens the units of work it needs)."""
        return JobDesk(self.unit_of_work, self.caller, self.state.job_limits, self.state.jobs)

    def assets(self, session: AsyncSession) -> AssetService:
        return AssetService(
            session,
            self.state.validation,
            page_size_max=self.state.limits.page_size_max,
            viewer=self.caller.owner_id,
            online=self.online_search(),
        )

    def online_search(self) -> OnlineSearch | None:
        """Yahoo and Alpha Vantage search for when the store has too little: online servers only, and only for a
        caller who may spend provider quota (the ``validate`` scope and budget, asked when a search needs it)."""
        settings = self.state.settings
        if settings.offline:
            return None

        async def may_spend() -> bool:
            try:
                await admit(self.state, SEARCHING, ("validate",), self.caller)
            except (Forbidden, RateLimited):
                return False  # the store's hits still come back
            return True

        return OnlineSearch.over(
            self.state.providers, settings.validation_deadline_s, self.state.limits.quotas, admit=may_spend
        )

    def screening(self, session: AsyncSession) -> ScreeningService:
        return ScreeningService(session, page_size_max=self.state.limits.page_size_max, viewer=self.caller.owner_id)


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


async def admit(state: AppState, what: str, classes: Sequence[str], caller: Caller | None = None) -> None:
    """Admit the caller for ``what``: the token scope of each class, then each class's per-owner rate limit.

    With ``auth=none`` the local user holds every scope, and per-owner rate limits (which keep tenants from
    starving each other) apply only when ``local_rate_limits`` is on: a single local user has no one to share
    with, and each market-data provider keeps its own budget either way.
    """
    caller = caller or resolve_caller(state)
    for tool_class in classes:
        if tool_class not in caller.scopes:
            raise Forbidden(
                f"Your token does not allow {what} (it needs the {tool_class!r} scope).",
                hint=_scope_hint(what, tool_class),
                details={"required_scope": tool_class, "token_scopes": sorted(caller.scopes)},
            )
    if state.settings.auth == "none" and not state.settings.local_rate_limits:
        return
    for tool_class in classes:
        await state.rate_limiter.hit(str(caller.owner_id), tool_class)


def _scope_hint(what: str, tool_class: str) -> str:
    if what == VALIDATING:
        return (
            "Ask for a token with the 'validate' scope, or call again with validate=false: the symbols are then "
            "added as pending, without asking market-data providers."
        )
    return "Ask for a token with that scope, or use read-only tools."


VALIDATING = "validating symbols with market-data providers"
SEARCHING = "searching market-data providers"


class AdmittedValidator:
    """The validator a write tool hands its service, admitted at the point of use.

    Adding symbols (create_universe, add_assets_to_universe, import_universe_csv) asks market-data providers,
    whose quotas every tenant shares: the caller needs the ``validate`` scope and spends one call of its validate
    budget, once per tool call, and only when symbols are actually validated (an empty universe, or
    ``validate=false``, asks no provider).
    """

    def __init__(self, inner: SymbolValidator, state: AppState, caller: Caller) -> None:
        self.inner, self.state, self.caller = inner, state, caller
        self._admitted = False

    async def check_many(
        self,
        session: AsyncSession,
        symbols: Sequence[str],
        *,
        owner_id: uuid.UUID | None = None,
    ) -> dict[str, SymbolCheck]:
        if symbols and not self._admitted:
            await admit(self.state, VALIDATING, ("validate",), self.caller)
            self._admitted = True
        return await self.inner.check_many(session, symbols, owner_id=owner_id)


async def tool_deps(ctx: AppContext) -> ToolDeps:
    # async on purpose: the SDK runs sync resolvers on a worker thread, which costs more than the whole call.
    state = ctx.request_context.lifespan_context
    return ToolDeps(state=state, caller=resolve_caller(state))


Deps = Annotated[ToolDeps, Resolve(tool_deps)]
