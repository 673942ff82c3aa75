"""Builds the cache, providers and validation service from settings (shared by the server and the workers)."""

from __future__ import annotations

from collections.abc import Sequence

from core.settings import Settings
from providers.base import MarketDataProvider
from providers.catalog import CatalogProvider
from providers.guard import CircuitBreaker, GuardedProvider, RateLimit
from services.quotas import Quotas
from services.security_master.store import StoreMaster
from services.validation import ValidationConfig, ValidationService
from storage.cache import Cache, build_cache

__all__ = ["build_cache_for", "build_providers", "build_validation", "quotas_from"]


def quotas_from(settings: Settings) -> Quotas:
    return Quotas(
        universes_per_owner=settings.max_universes_per_owner,
        members_per_universe=settings.max_members_per_universe,
        new_assets_per_hour=settings.max_new_assets_per_hour,
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


def _catalog_symbols(catalog: CatalogProvider):  # noqa: ANN202
    symbols: list[str] = []

    def known() -> list[str]:
        if not symbols:  # built on first use: the catalog loads lazily
            symbols.extend(e.symbol for e in catalog.entries())
        return symbols

    return known
