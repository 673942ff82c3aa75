"""The composition root: the process resources every entry point builds from settings — the store engine and its
sessions, the cache, the market-data providers, the validation service, the per-owner rate limiter — held in one
``AppState`` (``open_app_state``), plus the builders the worker processes use for their own (workers/entry.py).

The server (server/lifespan.py) adds its job runtime (workers/runtime.py) through ``open_app_state(job_runtime=…)``:
services/jobs.py names what the tools and the server ask of it (``JobQueue``), and this module never imports
workers/.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.memory import release_freed_memory
from core.settings import Settings
from providers.base import MarketDataProvider
from providers.catalog import CatalogProvider
from providers.guard import CircuitBreaker, GuardedProvider, RateLimit
from services.assets import seed_catalog
from services.jobs import JobLimits, JobQueue
from services.pagination import install_key
from services.quotas import Quotas
from services.ratelimit import OwnerRateLimiter
from services.schemas import ALL_SCOPES, Caller
from services.security_master.store import StoreMaster, ensure_snapshot_loaded
from services.tokens import ADMIN_SCOPE
from services.universes import Limits
from services.validation import ValidationConfig, ValidationService
from storage import migrate
from storage.cache import Cache, build_cache
from storage.db import make_engine, make_sessionmaker, refresh_planner_statistics, unit_of_work
from storage.repositories.server_secrets import get_or_create_secret
from storage.repositories.users import get_or_create_user

__all__ = [
    "AppState",
    "JobQueue",
    "build_cache_for",
    "build_providers",
    "build_rate_limiter",
    "build_validation",
    "job_limits_from",
    "limits_from",
    "open_app_state",
    "quotas_from",
]

logger = logging.getLogger(__name__)


def quotas_from(settings: Settings) -> Quotas:
    return Quotas(
        universes_per_owner=settings.max_universes_per_owner,
        members_per_universe=settings.max_members_per_universe,
        new_assets_per_hour=settings.max_new_assets_per_hour,
    )


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_symbols_per_call=settings.max_symbols_per_call,
        page_size_default=settings.page_size_default,
        page_size_max=settings.page_size_max,
        quotas=quotas_from(settings),
        max_bulk_symbols=settings.max_bulk_symbols if "jobs" in settings.toolsets else 0,
    )


def job_limits_from(settings: Settings) -> JobLimits:
    return JobLimits(
        max_symbols=settings.max_bulk_symbols,
        max_active=settings.max_active_jobs,
        retention_s=settings.job_retention_s,
        page_size_default=settings.page_size_default,
        page_size_max=settings.page_size_max,
    )


def build_rate_limiter(settings: Settings) -> OwnerRateLimiter:
    """The per-owner rate limits of the three tool classes, shared by the replicas through Redis when set."""
    return OwnerRateLimiter(
        {
            "read": settings.rate_limit_read,
            "write": settings.rate_limit_write,
            "validate": settings.rate_limit_validate,
        },
        redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
    )


def build_cache_for(settings: Settings) -> Cache:
    url = settings.redis_url.get_secret_value() if settings.redis_url else None
    return build_cache(url, timeout_s=settings.redis_timeout_s)


def _limit_storage(settings: Settings) -> str:
    return settings.redis_url.get_secret_value() if settings.redis_url else "async+memory://"


def build_providers(settings: Settings) -> list[MarketDataProvider]:
    """The validation chain in order: Yahoo -> Alpha Vantage -> offline catalog; network ones only when online."""
    if settings.provider == "fake":  # tests and benchmarks only: workers in other processes need it by setting
        from providers.fake import FakeProvider

        return [
            FakeProvider.with_generated(
                settings.fake_provider_symbols,
                latency_s=settings.fake_provider_latency_s,
                rate_limit_every=settings.fake_provider_rate_limit_every,
                retry_after_s=settings.fake_provider_retry_after_s,
            )
        ]
    chain: list[MarketDataProvider] = []
    storage = _limit_storage(settings)
    if not settings.offline and settings.yahoo_enabled:
        from providers.yahoo import YahooProvider

        chain.append(
            GuardedProvider(
                YahooProvider(timeout_s=settings.yahoo_timeout_s, cache_dir=settings.data_dir / "yfinance"),
                CircuitBreaker("yahoo"),
                RateLimit("yahoo", settings.yahoo_rate_limit, storage),
            )
        )
    if not settings.offline and settings.alpha_vantage_api_key is not None:
        from providers.alpha_vantage import AlphaVantageProvider

        chain.append(
            GuardedProvider(
                AlphaVantageProvider(
                    settings.alpha_vantage_api_key,
                    base_url=settings.alpha_vantage_base_url,
                    timeout_s=settings.alpha_vantage_timeout_s,
                ),
                CircuitBreaker("alpha_vantage"),
                RateLimit("alpha_vantage", settings.alpha_vantage_rate_limit, storage),
            )
        )
    chain.append(CatalogProvider())
    return chain


def build_validation(settings: Settings, cache: Cache, providers: Sequence[MarketDataProvider]) -> ValidationService:
    catalog = next((p for p in providers if isinstance(p, CatalogProvider)), None)
    return ValidationService(
        cache=cache,
        providers=providers,
        config=ValidationConfig(
            deadline_s=settings.validation_deadline_s,
            valid_ttl_s=settings.cache_valid_ttl_s,
            invalid_ttl_s=settings.cache_invalid_ttl_s,
            fresh_s=settings.verdict_fresh_s,
            quotas=quotas_from(settings),
        ),
        known_symbols=_catalog_symbols(catalog) if catalog else None,
        master=StoreMaster(),
    )


def _catalog_symbols(catalog: CatalogProvider) -> Callable[[], list[str]]:
    symbols: list[str] = []

    def known() -> list[str]:
        if not symbols:  # built on first use: the catalog loads lazily
            symbols.extend(e.symbol for e in catalog.entries())
        return symbols

    return known


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
    job_limits: JobLimits = field(default_factory=JobLimits)
    extras: dict[str, Any] = field(default_factory=dict)
    jobs: JobQueue | None = None  # queues bulk validation jobs, reports workers (set by open_app_state)

    def unit_of_work(self, owner_id: uuid.UUID | None = None) -> AbstractAsyncContextManager[AsyncSession]:
        """One transaction; with ``owner_id`` on PostgreSQL, row-level security is scoped to that owner."""
        return unit_of_work(self.sessions, owner_id=owner_id if self.engine.dialect.name == "postgresql" else None)


JobRuntimeFactory = Callable[[AppState], AbstractAsyncContextManager[JobQueue]]


@asynccontextmanager
async def open_app_state(
    settings: Settings,
    *,
    providers: Sequence[MarketDataProvider] | None = None,
    migrate_store: bool = True,
    job_runtime: JobRuntimeFactory | None = None,
) -> AsyncIterator[AppState]:
    """Everything a process serving tools needs, migrated and seeded, closed on exit; ``job_runtime`` (the server
    passes workers/runtime.py's) is opened last and set as ``state.jobs``."""
    async with AsyncExitStack() as stack:
        engine = make_engine(settings.sqlalchemy_url)
        stack.push_async_callback(engine.dispose)
        # Migrations, the security master's load and ANALYZE (below) run as the role that owns the tables, which may
        # differ from the server's own role: a load moves members of every owner's universes (row-level security
        # would hide them from the server's role).
        owner = engine
        if (migrate_store or settings.listings_load) and settings.admin_sqlalchemy_url != settings.sqlalchemy_url:
            owner = make_engine(settings.admin_sqlalchemy_url)
            stack.push_async_callback(owner.dispose)
        if migrate_store:
            await migrate.upgrade(owner, app_role=settings.database_app_role)
        sessions = make_sessionmaker(engine)
        if settings.listings_load:
            # The security master first, so that the catalog's seeding below adds only what it does not list.
            async with unit_of_work(make_sessionmaker(owner)) as session:
                report = await ensure_snapshot_loaded(session, settings.listings_snapshot)
            if report.loaded:
                # The load's parse and row dicts (~170 MB at its peak) are garbage now: give their memory back
                # before serving, or it stays resident for the process's lifetime (core/memory.py).
                release_freed_memory()
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
        # Last, so that the statistics describe the listings and the catalog just loaded (storage/db.py).
        async with owner.begin() as conn:
            await refresh_planner_statistics(conn)
        if owner is not engine:
            await owner.dispose()  # the owner's connections are not kept for the server's lifetime
        state = AppState(
            settings=settings,
            engine=engine,
            sessions=sessions,
            # The local user of auth=none (and stdio) is the operator: every scope, admin included.
            local_caller=Caller(owner_id=user.id, name=user.name, scopes=ALL_SCOPES | {ADMIN_SCOPE}),
            limits=limits_from(settings),
            cache=cache,
            providers=chain,
            validation=build_validation(settings, cache, chain),
            rate_limiter=build_rate_limiter(settings),
            job_limits=job_limits_from(settings),
        )
        if job_runtime is not None:
            state.jobs = await stack.enter_async_context(job_runtime(state))
        yield state
