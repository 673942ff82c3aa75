"""Process-wide resources (engine, sessions, cache, providers) built once per process and closed on exit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.settings import Settings
from services.schemas import Caller
from services.universes import Limits
from services.validation_api import SymbolValidator
from storage import migrate
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.repositories.users import get_or_create_user

__all__ = ["AppState", "open_app_state"]

logger = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    local_caller: Caller
    limits: Limits
    validator: SymbolValidator | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def unit_of_work(self):  # noqa: ANN201 - an async context manager yielding an AsyncSession
        return unit_of_work(self.sessions)


@asynccontextmanager
async def open_app_state(settings: Settings, *, migrate_store: bool = True) -> AsyncIterator[AppState]:
    async with AsyncExitStack() as stack:
        engine = make_engine(settings.sqlalchemy_url)
        stack.push_async_callback(engine.dispose)
        if migrate_store:
            await migrate.upgrade(engine)
        sessions = make_sessionmaker(engine)
        async with unit_of_work(sessions) as session:
            user = await get_or_create_user(session, settings.local_user)
        state = AppState(
            settings=settings,
            engine=engine,
            sessions=sessions,
            local_caller=Caller(owner_id=user.id, name=user.name),
            limits=Limits(
                max_symbols_per_call=settings.max_symbols_per_call,
                page_size_default=settings.page_size_default,
                page_size_max=settings.page_size_max,
            ),
        )
        yield state
