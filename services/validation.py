"""The mixed validation strategy (docs/ARCHITECTURE.md, "Validation"): syntax -> cache -> store -> providers in order -> pending.

One deadline covers the whole call however providers misbehave. ``invalid`` is said only when a provider answered
that the symbol does not exist; a symbol no provider could settle is ``pending`` (recorded in the store so the
background re-check finds it), or its last stored verdict marked stale. Provider errors are never cached.

Why a symbol stayed unsettled matters to bulk jobs (``validate_batch``): a transient failure (a rate limit, a
time-out, an outage, the deadline) is worth a retry soon; "no configured source can answer" (every provider asked
said it does not cover the symbol, e.g. the offline catalog's miss, or is not configured) is not, and such a symbol
is left to the periodic re-check.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from providers.base import (
    AssetProfile,
    MarketDataProvider,
    ProviderCannotAnswer,
    ProviderError,
    ProviderMisconfigured,
    ProviderRateLimited,
    Verdict,
)
from services import quotas, telemetry
from services.quotas import Quotas
from services.schemas import SymbolVerdict
from services.security_master.resolver import Resolution
from services.security_master.store import StoreMaster
from services.validation_api import SymbolCheck
from storage.cache import Cache
from storage.db import utcnow
from storage.models import Asset
from storage.repositories import assets as asset_repo

__all__ = ["BatchVerdicts", "ValidationConfig", "ValidationService"]

logger = logging.getLogger(__name__)

PROFILE_FIELDS = (
    "name",
    "exchange",
    "asset_type",
    "currency",
    "sector",
    "industry",
    "country",
    "market_cap",
    "pe_ratio",
    "dividend_yield",
    "isin",
    "figi",
    "cik",
)


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    deadline_s: float = 4.0
    valid_ttl_s: int = 86_400
    invalid_ttl_s: int = 3_600
    fresh_s: int = 86_400
    concurrency: int = 8
    quotas: Quotas = Quotas()  # the hourly quota on the pending assets a caller's validation creates


@dataclass(frozen=True, slots=True)
class BatchVerdicts:
    """Verdicts in input order, plus the unsettled symbols that no configured source can answer (retrying them soon
    is pointless: every provider asked said it does not cover them, or is not configured)."""

    verdicts: list[SymbolVerdict]
    unanswerable: frozenset[str]


# A provider that does not cover a symbol, or is not configured, gives the same answer next time.
_FINAL_ERRORS = (ProviderCannotAnswer, ProviderMisconfigured)


def _cache_key(symbol: str) -> str:
    return f"verdict:{symbol}"


def _profile_dict(profile: AssetProfile | None) -> dict[str, Any] | None:
    if profile is None:
        return None
    data = {k: v for k, v in asdict(profile).items() if k in PROFILE_FIELDS and v is not None}
    data["symbol"] = profile.symbol
    return data


def _from_asset(asset: Asset, *, stale: bool) -> SymbolVerdict:
    return SymbolVerdict(
        symbol=asset.symbol,
        status=asset.validation_status,
        source=asset.validation_source,
        reason=asset.validation_reason,
        checked_at=asset.last_validated_at,
        stale=stale,
        profile={k: getattr(asset, k) for k in PROFILE_FIELDS if getattr(asset, k) is not None} or None,
    )


def _provider_outcome(exc: ProviderError) -> str:
    if isinstance(exc, ProviderRateLimited):
        return "rate_limited"
    if isinstance(exc, ProviderMisconfigured):
        return "misconfigured"
    if isinstance(exc, ProviderCannotAnswer):
        return "cannot_answer"
    cause = getattr(exc, "cause", "unavailable")
    return cause if cause in ("dns_error", "timeout", "connection_refused", "circuit_open") else "unavailable"


class ValidationService:
    """Validates symbols for tools, universe membership and background jobs. Holds no per-request state."""

    def __init__(
        self,
        *,
        cache: Cache,
        providers: Sequence[MarketDataProvider],
        config: ValidationConfig | None = None,
        known_symbols: Callable[[], Sequence[str]] | None = None,
        master: StoreMaster | None = None,
    ) -> None:
        self.cache = cache
        self.providers = list(providers)
        self.config = config or ValidationConfig()
        self._known_symbols = known_symbols
        # The security master in the store (docs/SECURITY_MASTER.md): it answers for every symbol it knows, before any
        # provider is asked, so a provider's "no such symbol" can never overturn a listing it knows.
        self.master = master
        # Parsed cache entries by their raw JSON: a hit costs a dict lookup instead of a pydantic parse and copy.
        # Keyed by the exact payload, so a changed verdict (new JSON) can never be answered from here.
        self._parsed: dict[str, SymbolVerdict] = {}

    # --- the strategy ---------------------------------------------------------------------------------------------
    async def from_cache(self, symbols: Sequence[str]) -> list[SymbolVerdict] | None:
        """Verdicts when every symbol is cached, else None (the fast path: no store, no provider)."""
        cached = await self.cache.get_many([_cache_key(s) for s in symbols])
        if len(cached) < len(set(symbols)):
            return None  # not counted: the caller validates next, and validate_batch counts the lookups
        telemetry.record_cache_lookups(len(symbols), 0)
        return [self._cached_verdict(cached[_cache_key(s)]) for s in symbols]

    def _cached_verdict(self, raw: str) -> SymbolVerdict:
        """The verdict a cache entry holds, marked ``cached``. Verdicts are never mutated, so parses are shared."""
        verdict = self._parsed.get(raw)
        if verdict is None:
            if len(self._parsed) >= 2048:
                self._parsed.clear()
            verdict = SymbolVerdict.model_validate_json(raw).model_copy(update={"cached": True})
            self._parsed[raw] = verdict
        return verdict

    async def validate(
        self,
        session: AsyncSession,
        symbols: Sequence[str],
        *,
        force_refresh: bool = False,
        deadline_s: float | None = None,
        owner_id: uuid.UUID | None = None,
    ) -> list[SymbolVerdict]:
        """Verdicts for already-normalised ``symbols``, in their order. Records results in the store (no commit).

        ``owner_id``: the caller, whose hourly quota the pending assets created here count against and who alone
        sees them until they are confirmed (services/quotas.py); None for background work."""
        return (
            await self.validate_batch(
                session, symbols, force_refresh=force_refresh, deadline_s=deadline_s, owner_id=owner_id
            )
        ).verdicts

    async def validate_batch(
        self,
        session: AsyncSession,
        symbols: Sequence[str],
        *,
        force_refresh: bool = False,
        deadline_s: float | None = None,
        owner_id: uuid.UUID | None = None,
    ) -> BatchVerdicts:
        """``validate``, also saying which unsettled symbols no configured source can answer (for bulk jobs)."""
        started = time.monotonic()
        deadline = deadline_s if deadline_s is not None else self.config.deadline_s
        verdicts: dict[str, SymbolVerdict] = {}

        if not force_refresh:
            cached = await self.cache.get_many([_cache_key(s) for s in symbols])
            for symbol in symbols:
                raw = cached.get(_cache_key(symbol))
                if raw is not None:
                    verdicts[symbol] = self._cached_verdict(raw)
        misses = [s for s in symbols if s not in verdicts]
        telemetry.record_cache_lookups(len(symbols) - len(misses), len(misses))
        if not misses:
            return BatchVerdicts([verdicts[s] for s in symbols], frozenset())  # no provider call, no database query

        if self.master is not None:
            for symbol, resolution in (await self.master.resolve_many(session, misses)).items():
                verdicts[symbol] = await self._from_master(session, symbol, resolution)
                await self._remember(verdicts[symbol])
            misses = [s for s in misses if s not in verdicts]
            if not misses:
                return BatchVerdicts([verdicts[s] for s in symbols], frozenset())

        stored = await asset_repo.get_assets_by_symbols(session, misses)
        fresh_after = utcnow() - timedelta(seconds=self.config.fresh_s)
        to_ask: list[str] = []
        for symbol in misses:
            asset = stored.get(symbol)
            if (
                not force_refresh
                and asset is not None
                and asset.validation_status in ("valid", "invalid")
                and asset.last_validated_at is not None
                and asset.last_validated_at >= fresh_after
            ):
                verdicts[symbol] = _from_asset(asset, stale=False)
                if verdicts[symbol].status == "invalid":
                    verdicts[symbol] = verdicts[symbol].model_copy(
                        update={"candidates": await self.suggest(session, symbol)}
                    )
                await self._remember(verdicts[symbol])
            else:
                to_ask.append(symbol)

        remaining = max(0.0, deadline - (time.monotonic() - started))
        answers = await self._ask_providers(to_ask, remaining)
        unanswerable: set[str] = set()
        for symbol in to_ask:
            verdict = answers.get(symbol)
            asset = stored.get(symbol)
            if not isinstance(verdict, Verdict):
                verdicts[symbol] = self._unsettled(symbol, asset, verdict)
                if verdict and all(isinstance(e, _FINAL_ERRORS) for e in verdict):
                    unanswerable.add(symbol)
            else:
                verdicts[symbol] = self._from_provider(verdict)
                if verdicts[symbol].status == "invalid":
                    # Kept in the cached verdict too: a cache hit says "did you mean" as well.
                    verdicts[symbol] = verdicts[symbol].model_copy(
                        update={"candidates": await self.suggest(session, symbol)}
                    )
                await self._remember(verdicts[symbol])
        await self._record(session, stored, [verdicts[s] for s in to_ask], owner_id)
        for symbol in to_ask:
            if verdicts[symbol].status == "pending" and not verdicts[symbol].candidates:
                verdicts[symbol] = verdicts[symbol].model_copy(
                    update={"candidates": await self.suggest(session, symbol)}
                )
        return BatchVerdicts([verdicts[s] for s in symbols], frozenset(unanswerable))

    async def check_many(
        self, session: AsyncSession, symbols: Sequence[str], *, owner_id: uuid.UUID | None = None
    ) -> dict[str, SymbolCheck]:
        """The verdicts by symbol, as the universe service reads them (status, source, reason, candidates)."""
        return {v.symbol: v for v in await self.validate(session, symbols, owner_id=owner_id)}

    async def suggest(self, session: AsyncSession, symbol: str, limit: int = 5) -> list[str]:
        """Symbols the caller may have meant (never ``symbol``): from the security master's listed securities (edit
        distance, issuer names), else from the offline catalog's symbols."""
        if self.master is not None:
            found = await self.master.candidates(session, symbol, limit)
            if found is not None:
                return list(found)
        return self.candidates(symbol, limit)

    async def resolve(self, session: AsyncSession, symbol: str, as_of: date | None = None) -> Resolution | None:
        """What the security master says about ``symbol`` (at ``as_of``), or None when it has never seen it."""
        if self.master is None:
            return None
        return (await self.master.resolve_many(session, [symbol], as_of)).get(symbol)

    async def _from_master(self, session: AsyncSession, symbol: str, resolution: Resolution) -> SymbolVerdict:
        """The verdict of the security master: listed -> valid; delisted -> invalid, "delisted on DATE"; a former
        ticker -> invalid with ``renamed_to`` (the ticker no longer trades; the security does, under that one)."""
        security = resolution.security
        as_of = resolution.data_as_of
        checked = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC)
        common: dict[str, Any] = {"symbol": symbol, "source": "listings", "as_of": as_of, "checked_at": checked}
        profile: dict[str, Any] | None = None
        if security is not None:
            profile = {k: getattr(security, k) for k in PROFILE_FIELDS if k != "cik" and getattr(security, k, None)}
            profile.update(symbol=security.symbol, listing_status=security.listing_status)
            if security.cik is not None:
                profile["cik"] = f"{security.cik:010d}"
            common["profile"] = profile
        if resolution.status == "listed" and security is not None:
            note = None
            if resolution.former_holders:
                former = resolution.former_holders[-1]
                note = f"{symbol} was formerly the symbol of {former.name}" + (
                    f" (today {former.symbol})" if former.symbol != symbol else ""
                )
            return SymbolVerdict(**common, status="valid", reason=note, listing_status="listed")
        if resolution.status == "renamed":
            return SymbolVerdict(
                **common,
                status="invalid",
                reason=resolution.reason[:300],
                listing_status="renamed",
                renamed_to=resolution.renamed_to,
                current_symbol=resolution.current_symbol,
                candidates=[resolution.renamed_to] if resolution.renamed_to else [],
            )
        return SymbolVerdict(
            **common,
            status="invalid",
            reason=resolution.reason[:300],
            listing_status="delisted",
            delisted_on=resolution.delisted_on,
            current_symbol=resolution.current_symbol if resolution.current_symbol != symbol else None,
        )

    def candidates(self, symbol: str, limit: int = 5) -> list[str]:
        """Known symbols that look like ``symbol`` (for "did you mean"), from the offline catalog's symbols."""
        if self._known_symbols is None:
            return []
        known = self._known_symbols()
        base = symbol.split(".")[0].split("-")[0]
        # The symbol itself may be known (the catalog lists it, a provider now says invalid): never suggest it.
        close = [k for k in difflib.get_close_matches(symbol, known, n=limit + 1, cutoff=0.6) if k != symbol]
        prefixed = [k for k in known if k != symbol and (k.startswith(base + ".") or k.startswith(base + "-"))]
        return list(dict.fromkeys(prefixed + close))[:limit]

    # --- providers ------------------------------------------------------------------------------------------------
    async def _ask_providers(self, symbols: Sequence[str], budget_s: float) -> dict[str, Verdict | list[ProviderError]]:
        """Each symbol through the provider chain, concurrently, all within ``budget_s``: a verdict, or every
        provider's error in chain order (absent when the budget ran out first)."""
        results: dict[str, Verdict | list[ProviderError]] = {}
        if not symbols or budget_s <= 0 or not self.providers:
            return results
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(symbol: str) -> None:
            async with gate:
                errors: list[ProviderError] = []
                for provider in self.providers:
                    try:
                        results[symbol] = await provider.validate(symbol)
                        telemetry.PROVIDER_CALLS.labels(provider.name, "ok").inc()
                        return
                    except ProviderError as exc:
                        errors.append(exc)
                        telemetry.PROVIDER_CALLS.labels(provider.name, _provider_outcome(exc)).inc()
                if errors:
                    results[symbol] = errors

        tasks = [asyncio.create_task(one(s)) for s in symbols]
        done, pending = await asyncio.wait(tasks, timeout=budget_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() is not None:  # a bug, not a provider answer: the symbol stays unsettled
                logger.error("validation task failed", exc_info=task.exception())
        return results

    def _from_provider(self, verdict: Verdict) -> SymbolVerdict:
        checked = datetime.combine(verdict.as_of, datetime.min.time(), tzinfo=UTC) if verdict.as_of else utcnow()
        return SymbolVerdict(
            symbol=verdict.symbol,
            status=verdict.status,
            source=verdict.source,
            reason=verdict.reason if verdict.status == "invalid" else None,
            checked_at=checked,
            profile=_profile_dict(verdict.profile),
            as_of=verdict.as_of,
        )

    def _unsettled(self, symbol: str, asset: Asset | None, errors: list[ProviderError] | None) -> SymbolVerdict:
        why = "no provider answered within the deadline"
        retry_after = None
        if errors:
            limited = [e for e in errors if isinstance(e, ProviderRateLimited)]
            if limited:
                # The soonest any source may answer again; the others' errors are in the reason too.
                first = min(limited, key=lambda e: e.retry_after_s)
                retry_after = first.retry_after_s
                others = [e for e in errors if e is not first]
                why = f"{first.provider} is rate limited" + (
                    f"; {'; '.join(f'{e.provider}: {e.message}' for e in others)}" if others else ""
                )
            else:
                why = f"no provider could answer ({'; '.join(f'{e.provider}: {e.message}' for e in errors)})"
        if asset is not None and asset.validation_status in ("valid", "invalid"):
            # A real earlier verdict beats "pending": report it, clearly marked stale.
            return _from_asset(asset, stale=True).model_copy(update={"reason": f"last verdict kept: {why}"})
        return SymbolVerdict(symbol=symbol, status="pending", reason=why, retry_after_s=retry_after)

    # --- persistence ----------------------------------------------------------------------------------------------
    async def _remember(self, verdict: SymbolVerdict) -> None:
        if verdict.status not in ("valid", "invalid") or verdict.stale:
            return  # provider errors and unsettled symbols are never cached
        ttl = self.config.valid_ttl_s if verdict.status == "valid" else self.config.invalid_ttl_s
        payload = verdict.model_copy(update={"cached": False}).model_dump_json()
        await self.cache.set(_cache_key(verdict.symbol), payload, ttl)

    async def _record(
        self,
        session: AsyncSession,
        stored: dict[str, Asset],
        verdicts: list[SymbolVerdict],
        owner_id: uuid.UUID | None = None,
    ) -> None:
        """Write verdicts to the store: valid ones upserted with their profile, invalid ones only onto known assets,
        pending ones created so the background re-check can find them."""
        new_rows: list[dict[str, Any]] = []
        now = utcnow()
        for v in verdicts:
            asset = stored.get(v.symbol)
            if v.stale:
                continue
            values: dict[str, Any] = {}
            if v.status == "valid":
                values = {k: val for k, val in (v.profile or {}).items() if k in PROFILE_FIELDS}
                values.update(
                    validation_status="valid",
                    is_validated=True,
                    validation_source=v.source,
                    validation_reason=None,
                    last_validated_at=v.checked_at or now,
                )
            elif v.status == "invalid":
                if asset is None or (asset.master_key is not None and asset.listing_status == "listed"):
                    continue  # a provider's "no such symbol" never overwrites a listing the security master knows
                values = dict(
                    validation_status="invalid",
                    is_validated=False,
                    validation_source=v.source,
                    validation_reason=(v.reason or "")[:300] or None,
                    last_validated_at=now,
                )
            elif v.status == "pending":
                if asset is not None and asset.validation_status != "unknown":
                    continue
                values = dict(validation_status="pending", validation_reason=(v.reason or "")[:300] or None)
            if asset is not None:
                await asset_repo.update_asset(session, asset, values)
            elif values:
                new_rows.append({"symbol": v.symbol, **values})
        if new_rows:
            await quotas.create_assets(session, new_rows, owner_id=owner_id, quotas=self.config.quotas)
