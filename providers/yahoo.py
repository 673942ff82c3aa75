"""Yahoo Finance through yfinance: ``Search`` (one request) decides validity, ``Ticker.info`` enriches the profile.

yfinance is synchronous and its own timeouts are poor guides (30 s hard-coded on the cookie and crumb requests;
90 s for ``.info`` on a network that accepts connections and never answers: yfinance passes timeout=30 on
every request, overriding a session's own default). So:

* every call runs in a worker thread, under an overall deadline of ``timeout_s``; past it the caller gets
  ``ProviderUnavailable`` and the thread is abandoned;
* every HTTP request the session makes has its timeout clamped to ``timeout_s``, so abandoned threads end soon;
* at most ``max_in_flight`` yfinance calls may be running (abandoned ones included) before new calls fail fast,
  so a black hole cannot pile up threads.

yfinance keeps process-wide state (the ``YfData`` singleton, which adopts the session of the latest call, and an
untimed LRU of search responses). One ``YahooProvider`` per process is the intended use.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from providers.base import (
    AssetProfile,
    ProviderName,
    ProviderRateLimited,
    ProviderUnavailable,
    Verdict,
    network_failure,
)
from providers.sectors import to_gics_sector

__all__ = ["ALLOWED_QUOTE_TYPES", "YahooProvider", "clamp_session"]

logger = logging.getLogger(__name__)

PROVIDER: ProviderName = "yahoo"
ALLOWED_QUOTE_TYPES = frozenset({"EQUITY", "ETF", "INDEX", "MUTUALFUND", "CURRENCY", "CRYPTOCURRENCY", "FUTURE"})
_ASSET_TYPES = {
    "EQUITY": "equity",
    "ETF": "etf",
    "INDEX": "index",
    "MUTUALFUND": "fund",
    "CURRENCY": "currency",
    "CRYPTOCURRENCY": "crypto",
    "FUTURE": "other",
}
RATE_LIMIT_RETRY_S = 60.0  # Yahoo sends no Retry-After; a minute is what yfinance users report working


def _clamp(timeout: Any, ceiling: float) -> Any:
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return min(float(timeout), ceiling)
    if isinstance(timeout, tuple):
        return tuple(_clamp(part, ceiling) for part in timeout)
    return ceiling  # None or a library sentinel ("not set"): never wait without bound


def clamp_session(session: Any, max_timeout_s: float) -> Any:
    """Cap the timeout of every request ``session`` makes (yfinance passes its own 30 s on each call).

    Works on an instance, so it also tames sessions built by a caller's factory; idempotent.
    """
    if getattr(session, "_universe_clamp_s", None) is not None:
        return session
    original = session.request

    def request(method: Any, url: Any, *args: Any, timeout: Any = None, **kwargs: Any) -> Any:
        return original(method, url, *args, timeout=_clamp(timeout, max_timeout_s), **kwargs)

    session.request = request
    session._universe_clamp_s = max_timeout_s
    return session


def _default_session(timeout_s: float) -> Any:
    """A clamped curl_cffi session (what yfinance prefers), or a requests one when curl_cffi is off.

    Subclasses of yfinance's own session classes, overriding ``request`` to clamp every timeout; ``clamp_session``
    then covers calls that bypass ``request`` overrides.
    """
    from yfinance import _http

    use_requests = os.environ.get("YF_DISABLE_CURL_CFFI", "").lower() in ("1", "true", "yes") or not _http.HAS_CURL_CFFI
    if use_requests:
        import requests

        class ClampedRequestsSession(requests.Session):
            def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
                kwargs["timeout"] = _clamp(kwargs.get("timeout"), timeout_s)
                return super().request(method, url, *args, **kwargs)

        return ClampedRequestsSession()

    from curl_cffi import requests as curl_requests

    class ClampedCurlSession(curl_requests.Session):
        def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = _clamp(kwargs.get("timeout"), timeout_s)
            return super().request(method, url, *args, **kwargs)

    return ClampedCurlSession(impersonate="chrome")


class YahooProvider:
    """Validation and search through Yahoo Finance (yfinance), safe to call from async code.

    ``validate`` accepts only an exact ``symbol`` match among ``Search`` quotes whose ``quoteType`` is in
    ``ALLOWED_QUOTE_TYPES``; ``.info`` then enriches the profile within what is left of the deadline (``enrich=False``
    skips it: one request per symbol instead of three, for bulk work). Enrichment failures keep the search data.
    ``session_factory`` is the test seam: it builds the (requests or curl_cffi) session yfinance will use.
    """

    name: ProviderName = PROVIDER

    def __init__(
        self,
        timeout_s: float = 3.0,
        cache_dir: Path | None = None,
        session_factory: Callable[[], Any] | None = None,
        *,
        enrich: bool = True,
        max_in_flight: int = 8,
    ) -> None:
        self._timeout_s = timeout_s
        self._cache_dir = cache_dir
        self._session_factory = session_factory
        self._enrich = enrich
        self._max_in_flight = max_in_flight
        self._session: Any = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._in_flight = 0
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"YahooProvider(timeout_s={self._timeout_s}, enrich={self._enrich})"

    @property
    def in_flight(self) -> int:
        """yfinance calls still running, abandoned ones included (for health reports and tests)."""
        return self._in_flight

    # --- plumbing ----------------------------------------------------------------------------------------------
    def _get_session(self) -> Any:
        with self._lock:
            if self._session is None:
                if self._cache_dir is not None:
                    import yfinance as yf

                    self._cache_dir.mkdir(parents=True, exist_ok=True)
                    yf.set_tz_cache_location(str(self._cache_dir))
                factory = self._session_factory or (lambda: _default_session(self._timeout_s))
                self._session = clamp_session(factory(), self._timeout_s)
            return self._session

    async def _in_thread(self, what: str, func: Callable[[], Any], budget_s: float) -> Any:
        """Run ``func`` in a worker thread within ``budget_s``; map every failure onto a ProviderError."""
        if self._closed:
            raise ProviderUnavailable(self.name, "provider is closed")
        with self._lock:
            if self._in_flight >= self._max_in_flight:
                busy = True
            else:
                busy = False
                self._in_flight += 1
        if busy:
            raise ProviderUnavailable(self.name, "too many Yahoo requests still running; not starting another")
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._max_in_flight)
        # The slot is released by the thread when it ends, or here if the call is cancelled before it started.
        phase = ["pending"]

        def tracked() -> Any:
            with self._lock:
                if phase[0] != "pending":
                    return None
                phase[0] = "running"
            try:
                return func()
            finally:
                with self._lock:
                    self._in_flight -= 1

        failure: Exception | None = None
        try:
            with anyio.fail_after(max(budget_s, 0.001)):
                return await anyio.to_thread.run_sync(tracked, abandon_on_cancel=True, limiter=self._limiter)
        except TimeoutError:
            failure = ProviderUnavailable(self.name, f"no answer within {self._timeout_s:g} s")
        except Exception as exc:  # yfinance raises curl_cffi/requests errors, YFException, KeyError, ...
            failure = _map_exception(exc)
        finally:
            with self._lock:
                if phase[0] == "pending":
                    phase[0] = "abandoned"
                    self._in_flight -= 1
        logger.warning("yahoo %s failed: %s", what, failure)
        raise failure

    # --- the Protocol ------------------------------------------------------------------------------------------
    async def validate(self, symbol: str) -> Verdict:
        key = symbol.strip().upper()
        started = anyio.current_time()
        response = await self._in_thread("search", lambda: self._search_sync(key, 8), self._timeout_s)
        quotes = _quotes(response)
        match = next((q for q in quotes if str(q.get("symbol", "")).upper() == key), None)
        if match is None:
            # Yahoo ranks close spellings first (BRK.B -> BRK-B); name them so the caller can offer "did you mean".
            near = [str(q["symbol"]).upper() for q in quotes if str(q.get("quoteType")).upper() in ALLOWED_QUOTE_TYPES]
            hint = f"; closest Yahoo symbols: {', '.join(near[:3])}" if near else ""
            reason = f"Yahoo Finance has no symbol {key}{hint}"
            return Verdict(symbol=key, status="invalid", source=self.name, reason=reason)
        quote_type = str(match.get("quoteType") or "").upper()
        if quote_type not in ALLOWED_QUOTE_TYPES:
            reason = f"Yahoo Finance lists {key} as {quote_type.lower() or 'an unknown type'}, not a holdable security"
            return Verdict(symbol=key, status="invalid", source=self.name, reason=reason)
        profile = _search_profile(match)
        remaining = self._timeout_s - (anyio.current_time() - started)
        if self._enrich and remaining > 0.05:
            try:
                info = await self._in_thread("info", lambda: self._info_sync(key), remaining)
            except ProviderUnavailable:
                info = None  # enrichment is a bonus: the search already proved the symbol exists
            except ProviderRateLimited:
                info = None
            if info:
                profile = _enriched(profile, info)
        return Verdict(symbol=key, status="valid", source=self.name, profile=profile)

    async def search(self, query: str, limit: int = 10) -> list[AssetProfile]:
        text = query.strip()
        if not text or limit <= 0:
            return []
        count = min(max(limit, 1), 25)
        response = await self._in_thread("search", lambda: self._search_sync(text, count), self._timeout_s)
        profiles = [
            _search_profile(q)
            for q in _quotes(response)
            if str(q.get("quoteType") or "").upper() in ALLOWED_QUOTE_TYPES
        ]
        return profiles[:limit]

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except Exception as exc:  # closing is best effort
                logger.debug("yahoo session close failed: %s", type(exc).__name__)

    # --- blocking parts (run in threads) -----------------------------------------------------------------------
    def _search_sync(self, query: str, count: int) -> dict[str, Any]:
        import yfinance as yf
        from yfinance.data import YfData

        session = self._get_session()
        # yfinance memoises responses process-wide with no expiry (error pages included); freshness is our
        # cache's job, so start every search from the network.
        YfData.cache_get.cache_clear()
        result = yf.Search(
            query,
            max_results=count,
            news_count=0,
            lists_count=0,
            include_cb=False,
            session=session,
            timeout=self._timeout_s,
        )
        return result.response if isinstance(result.response, dict) else {}

    def _info_sync(self, symbol: str) -> dict[str, Any] | None:
        import yfinance as yf

        ticker = yf.Ticker(symbol, session=self._get_session())
        try:
            info = ticker.info
        except Exception:
            # .info fetches quoteSummary and quote, then a third, fragile call; if that one fails, keep the first two
            salvaged = getattr(getattr(ticker, "_quote", None), "_info", None)
            if isinstance(salvaged, dict) and salvaged:
                return salvaged
            raise
        return info if isinstance(info, dict) else None


def _map_exception(exc: BaseException) -> ProviderUnavailable | ProviderRateLimited:
    # Type names only: yfinance and HTTP library messages carry URLs (with crumbs) and response bodies.
    from yfinance.exceptions import YFRateLimitError

    if isinstance(exc, YFRateLimitError):
        return ProviderRateLimited(PROVIDER, "Yahoo Finance is rate limiting us", retry_after_s=RATE_LIMIT_RETRY_S)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 429:
        return ProviderRateLimited(PROVIDER, "Yahoo Finance answered HTTP 429", retry_after_s=RATE_LIMIT_RETRY_S)
    # A status of 0 is no answer at all: curl_cffi attaches an empty response to a failed connection or DNS lookup.
    if isinstance(status, int) and status > 0:
        return ProviderUnavailable(PROVIDER, f"Yahoo Finance answered HTTP {status}")
    return network_failure(PROVIDER, exc)


def _quotes(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The Yahoo quotes of a search answer. A body without a ``quotes`` list is an error page, not "no match"."""
    quotes = response.get("quotes")
    if not isinstance(quotes, list):
        raise ProviderUnavailable(PROVIDER, "Yahoo Finance search answered without a quotes list")
    return [q for q in quotes if isinstance(q, dict) and q.get("symbol") and q.get("isYahooFinance", True) is not False]


def _search_profile(quote: dict[str, Any]) -> AssetProfile:
    quote_type = str(quote.get("quoteType") or "").upper()
    extra: dict[str, object] = {}
    if quote.get("exchange"):
        extra["yahoo_exchange"] = quote["exchange"]
    if quote.get("prevName"):
        extra["previous_name"] = quote["prevName"]
    return AssetProfile(
        symbol=str(quote["symbol"]).upper(),
        name=quote.get("longname") or quote.get("shortname") or None,
        exchange=quote.get("exchDisp") or quote.get("exchange") or None,
        asset_type=_ASSET_TYPES.get(quote_type, "other") if quote_type else None,
        sector=to_gics_sector(quote.get("sector"), quote.get("industry")),
        industry=quote.get("industry") or None,
        extra=extra,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and value != 0:
        return float(value)
    return None


def _dividend_yield(info: dict[str, Any]) -> float | None:
    """``info["dividendYield"]`` as a fraction.

    yfinance merges two sources and the later wins: quoteSummary's summaryDetail (a fraction, 0.0038 for AAPL in the
    recorded fixture) and the v7 quote (percent points, 0.38). ``trailingAnnualDividendYield`` is a fraction in both,
    so it tells which one we got; without it, the presence of v7-only fields (``fullExchangeName``) does.
    """
    value = _number(info.get("dividendYield"))
    if value is None:
        return None
    reference = _number(info.get("trailingAnnualDividendYield"))
    if reference is not None:
        return value / 100 if value / reference > 10 else value
    if value > 1 or "fullExchangeName" in info:
        return value / 100
    return value


def _enriched(base: AssetProfile, info: dict[str, Any]) -> AssetProfile:
    """Merge ``.info`` over the search profile; an unknown-symbol ``.info`` (only trailingPegRatio) changes nothing."""
    if not (info.get("quoteType") or info.get("longName") or info.get("shortName")):
        return base
    extra = dict(base.extra)
    if info.get("exchange"):
        extra["yahoo_exchange"] = info["exchange"]
    sector_text, industry = info.get("sector"), info.get("industry")
    return AssetProfile(
        symbol=base.symbol,
        name=info.get("longName") or info.get("shortName") or base.name,
        exchange=base.exchange or info.get("fullExchangeName") or info.get("exchange"),
        asset_type=base.asset_type,
        currency=info.get("currency") or base.currency,
        sector=to_gics_sector(sector_text, industry) or base.sector,
        industry=industry or base.industry,
        country=info.get("country") or base.country,
        market_cap=_number(info.get("marketCap")),
        pe_ratio=_number(info.get("trailingPE")),
        dividend_yield=_dividend_yield(info),
        isin=base.isin,
        extra=extra,
    )
