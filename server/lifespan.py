"""Process-wide resources (engine, sessions, cache, providers, validation) built once per process, closed on exit."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.settings import Settings
from providers.base import MarketDataProvider
from providers.catalog import CatalogProvider
from server.wiring import build_cache_for, build_providers, build_validation, quotas_from
from services.assets import seed_catalog
from services.pagination import install_key
from services.ratelimit import OwnerRateLimiter
from services.schemas import ALL_SCOPES, Caller
from services.security_master.store import ensure_snapshot_loaded
from services.tokens import ADMIN_SCOPE
from services.universes import Limits
from services.validation import ValidationService
from storage import migrate
from storage.cache import Cache
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.repositories.server_secrets import get_or_create_secret
from storage.repositories.users import get_or_create_user
from workers.runtime import JobRuntime, open_job_runtime

__all__ = ["AppState", "open_app_state"]

logger = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    local_caller: Caller
    limits: Limits
    cache: Cache
    providers: list[MarketDataProvider]
    validation: ValidationService
    rate_limiter: OwnerRateLimiter
    extras: dict[str, Any] = field(default_factory=dict)
    jobs: JobRuntime | None = None  # queues bulk validation jobs, reports workers (set by open_app_state)

    def unit_of_work(self, owner_id: uuid.UUID | None = None):  # noqa: ANN201 - yields an AsyncSession
        """One transaction; with ``owner_id`` on PostgreSQL, row-level security is scoped to that owner."""
        return unit_of_work(self.sessions, owner_id=owner_id if self.engine.dialect.name == "postgresql" else None)


@asynccontextmanager
async def open_app_state(
    settings: Settings, *, providers: Sequence[MarketDataProvider] | None = None, migrate_store: bool = True
) -> AsyncIterator[AppState]:
    async with AsyncExitStack() as stack:
        engine = make_engine(settings.sqlalchemy_url)
        stack.push_async_callback(engine.dispose)
        if migrate_store:
            # Migrations run as the role that owns the tables, which may differ from the server's own role.
            admin = (
                engine
                if settings.admin_sqlalchemy_url == settings.sqlalchemy_url
                else make_engine(settings.admin_sqlalchemy_url)
            )
            try:
                await migrate.upgrade(admin, app_role=settings.database_app_role)
            finally:
                if admin is not engine:
                    await admin.dispose()
        sessions = make_sessionmaker(engine)
        if settings.listings_load:
            # The security master first, so that the catalog's seeding below adds only what it does not list.
            async with unit_of_work(sessions) as session:
                report = await ensure_snapshot_loaded(session, settings.listings_snapshot)
            if report.loaded:
                logger.info(
                    "loaded the US listings snapshot as of %s: %d securities (%d new, %d updated) in %.1f s",
                    report.as_of,
                    report.securities,
                    report.new,
                    report.changed,
                    report.seconds,
                )
        chain = list(providers) if providers is not None else build_providers(settings)
        for provider in chain:
            stack.push_async_callback(provider.aclose)
        cache = build_cache_for(settings)
        stack.push_async_callback(cache.aclose)
        async with unit_of_work(sessions) as session:
            # Cursors are signed with the deployment's key: the setting, else the one kept in the (shared) store.
            cursor_key = settings.cursor_secret.get_secret_value() if settings.cursor_secret else None
            install_key(cursor_key or await get_or_create_secret(session, "cursor"))
            user = await get_or_create_user(session, settings.local_user)
            catalog = next((p for p in chain if isinstance(p, CatalogProvider)), None)
            if settings.seed_catalog and catalog is not None:
                inserted = await seed_catalog(session, catalog)
                if inserted:
                    logger.info("loaded %d offline catalog entries (as of %s)", inserted, catalog.as_of)
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        state = AppState(
            settings=settings,
            engine=engine,
            sessions=sessions,
            # The local user of auth=none (and stdio) is the operator: every scope, admin included.
            local_caller=Caller(owner_id=user.id, name=user.name, scopes=ALL_SCOPES | {ADMIN_SCOPE}),
            limits=Limits(
                max_symbols_per_call=settings.max_symbols_per_call,
                page_size_default=settings.page_size_default,
                page_size_max=settings.page_size_max,
                quotas=quotas_from(settings),
            ),
            cache=cache,
            providers=chain,
            validation=build_validation(settings, cache, chain),
            rate_limiter=OwnerRateLimiter(
                {
                    "read": settings.rate_limit_read,
                    "write": settings.rate_limit_write,
                    "validate": settings.rate_limit_validate,
                },
                redis_url=redis_url,
            ),
        )
        state.jobs = await stack.enter_async_context(open_job_runtime(state))
        yield state
