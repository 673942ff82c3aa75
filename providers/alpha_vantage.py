"""Alpha Vantage over httpx: OVERVIEW (and SYMBOL_SEARCH to confirm ETFs) for validation, SYMBOL_SEARCH for search.

Alpha Vantage reports most problems as HTTP 200 with a JSON body ("Error Message", "Information", "Note"), so every
body is classified before it is believed (``classify_error_body``, in the order the provider guide fixes: the burst
text also mentions "25 requests per day", so a naive "per day" check files a one-second throttle as a daily one).

The API key travels in the query string, so anything that can print a URL can leak it: httpx exceptions do (their
text includes the request URL) and so does httpx's own INFO log line. Hence: exception texts are never passed on
(only their type names), our exceptions are raised outside ``except`` blocks so no URL-bearing exception is chained
to them, and a filter on the ``httpx`` logger redacts ``apikey=`` values.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx

from providers.base import (
    AssetProfile,
    ProviderError,
    ProviderMisconfigured,
    ProviderName,
    ProviderRateLimited,
    ProviderUnavailable,
    Verdict,
    network_failure,
)
from providers.sectors import to_gics_sector

__all__ = ["AlphaVantageProvider", "classify_error_body", "parse_number"]

logger = logging.getLogger(__name__)

PROVIDER: ProviderName = "alpha_vantage"
_APIKEY_IN_TEXT = re.compile(r"(apikey=)[^&\s\"']+", re.IGNORECASE)
_NUMBER_PLACEHOLDERS = {"", "none", "-", "n/a", "na", "nan", "null"}
_ASSET_TYPES = {"common stock": "equity", "equity": "equity", "etf": "etf", "mutual fund": "fund", "index": "index"}


class _Secret:
    """Holds the key; its repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'**********'"


class _RedactApiKey(logging.Filter):
    """Rewrites ``apikey=...`` in records of the logger it is attached to (httpx logs every request URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apikey=" in message.lower():
            record.msg = _APIKEY_IN_TEXT.sub(r"\1REDACTED", message)
            record.args = ()
        return True


def _install_httpx_redaction() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactApiKey) for f in httpx_logger.filters):
        httpx_logger.addFilter(_RedactApiKey())


def parse_number(value: Any) -> float | None:
    """Alpha Vantage numbers are strings; "None", "-", "" and "0" (its placeholder for missing data) mean unknown."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and value.strip().lower() not in _NUMBER_PLACEHOLDERS:
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    else:
        return None
    if math.isnan(number) or math.isinf(number) or number == 0.0:
        return None
    return number


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return None if stripped.lower() in _NUMBER_PLACEHOLDERS else stripped


def _seconds_to_utc_midnight(now: datetime | None = None) -> float:
    current = now or datetime.now(UTC)
    midnight = (current + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - current).total_seconds())


def classify_error_body(payload: Any) -> ProviderError | None:
    """The error an HTTP-200 Alpha Vantage body stands for, or None when it is an ordinary answer.

    Order matters (the burst text also says "25 requests per day", and the daily and premium texts both say
    "premium plans"): Error Message (apikey -> misconfigured, else bad request); then
    Information/Note: burst (sparingly, per second, per minute) before daily (per day), then premium/demo; else an
    unknown upstream message. The returned error's text never quotes the body (a daily-limit variant echoes the key).
    """
    if not isinstance(payload, dict):
        return None
    error = payload.get("Error Message")
    if isinstance(error, str):
        if "apikey" in error.lower():
            return ProviderMisconfigured(PROVIDER, "Alpha Vantage rejected the API key (invalid or missing)")
        return ProviderUnavailable(PROVIDER, "Alpha Vantage rejected the request as invalid")
    notice = payload.get("Information", payload.get("Note"))
    if not isinstance(notice, str):
        return None
    text = notice.lower()
    if "sparingly" in text or "per second" in text:
        return ProviderRateLimited(PROVIDER, "Alpha Vantage burst limit reached", retry_after_s=1.0)
    if "per minute" in text:
        return ProviderRateLimited(PROVIDER, "Alpha Vantage per-minute limit reached", retry_after_s=60.0)
    if "per day" in text:
        return ProviderRateLimited(
            PROVIDER, "Alpha Vantage daily quota used up", retry_after_s=round(_seconds_to_utc_midnight(), 1)
        )
    if "premium endpoint" in text:
        return ProviderMisconfigured(PROVIDER, "this Alpha Vantage function needs a premium plan")
    if "**demo**" in text or "demo purposes" in text:
        return ProviderMisconfigured(PROVIDER, "the Alpha Vantage demo key cannot be used; configure a real key")
    return ProviderUnavailable(PROVIDER, "Alpha Vantage answered with an unexpected notice")


class AlphaVantageProvider:
    """Validation and search through the Alpha Vantage REST API, with one shared ``httpx.AsyncClient``.

    ``timeout_s`` bounds each request as a whole (connect, send, wait, read). Pass ``client`` to share a client (it
    is then not closed by ``aclose``). ``confirm_with_search`` asks SYMBOL_SEARCH when OVERVIEW is empty, because
    OVERVIEW does not cover ETFs; it costs one more request of the small free quota.
    """

    name: ProviderName = PROVIDER

    def __init__(
        self,
        api_key: Any,
        base_url: str = "https://www.alphavantage.co/query",
        timeout_s: float = 3.0,
        client: httpx.AsyncClient | None = None,
        *,
        confirm_with_search: bool = True,
    ) -> None:
        # Accept a pydantic SecretStr as well as a str, without importing pydantic here.
        raw = api_key.get_secret_value() if hasattr(api_key, "get_secret_value") else api_key
        self._key = _Secret(str(raw or "").strip())
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), follow_redirects=False, headers={"User-Agent": "universe-mcp"}
        )
        self._confirm = confirm_with_search
        _install_httpx_redaction()

    def __repr__(self) -> str:
        return f"AlphaVantageProvider(base_url={self._base_url!r}, timeout_s={self._timeout_s})"

    def _redact(self, text: str) -> str:
        key = self._key.reveal()
        cleaned = text.replace(key, "REDACTED") if key else text
        return _APIKEY_IN_TEXT.sub(r"\1REDACTED", cleaned)

    async def _get(self, function: str, **params: str) -> dict[str, Any]:
        """One API call; returns the JSON object or raises a ProviderError (outside any except block)."""
        if not self._key.reveal():
            raise ProviderMisconfigured(self.name, "no Alpha Vantage API key is configured")
        query = {"function": function, **params, "apikey": self._key.reveal()}
        failure: ProviderError | None = None
        response: httpx.Response | None = None
        try:
            with anyio.fail_after(self._timeout_s):
                response = await self._client.get(self._base_url, params=query)
        except TimeoutError:
            failure = ProviderUnavailable(self.name, f"no answer within {self._timeout_s:g} s", cause="timeout")
        except httpx.TimeoutException:
            failure = ProviderUnavailable(self.name, f"no answer within {self._timeout_s:g} s", cause="timeout")
        except httpx.HTTPError as exc:
            failure = network_failure(self.name, exc)
        if failure is not None or response is None:
            logger.warning("alpha_vantage %s failed: %s", function, failure.message if failure else "no response")
            raise failure or ProviderUnavailable(self.name, "no response")
        return self._decode(function, response)

    def _decode(self, function: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 429:
            retry_after = parse_number(response.headers.get("Retry-After")) or 60.0
            logger.warning("alpha_vantage %s: HTTP 429", function)
            raise ProviderRateLimited(self.name, "Alpha Vantage answered HTTP 429", retry_after_s=retry_after)
        if status in (401, 403):
            logger.warning("alpha_vantage %s: HTTP %d", function, status)
            raise ProviderMisconfigured(self.name, f"Alpha Vantage refused access (HTTP {status})")
        if status != 200:
            logger.warning("alpha_vantage %s: HTTP %d", function, status)
            raise ProviderUnavailable(self.name, f"Alpha Vantage answered HTTP {status}")
        payload: Any = None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            logger.warning("alpha_vantage %s: the answer was not a JSON object", function)
            raise ProviderUnavailable(self.name, "Alpha Vantage answered with something other than a JSON object")
        error = classify_error_body(payload)
        if error is not None:
            notice = payload.get("Error Message") or payload.get("Information") or payload.get("Note")
            logger.warning("alpha_vantage %s: %s (%s)", function, error.message, self._redact(str(notice))[:200])
            raise error
        return payload

    async def validate(self, symbol: str) -> Verdict:
        key = symbol.strip().upper()
        overview = await self._get("OVERVIEW", symbol=key)
        if overview:
            return Verdict(symbol=key, status="valid", source=self.name, profile=_overview_profile(key, overview))
        if self._confirm:
            match = next((m for m in await self._matches(key) if str(m.get("1. symbol")).upper() == key), None)
            if match is not None:
                return Verdict(symbol=key, status="valid", source=self.name, profile=_match_profile(match))
        return Verdict(symbol=key, status="invalid", source=self.name, reason=f"Alpha Vantage has no listing for {key}")

    async def _matches(self, keywords: str) -> list[dict[str, Any]]:
        payload = await self._get("SYMBOL_SEARCH", keywords=keywords)
        matches = payload.get("bestMatches")
        if not isinstance(matches, list):
            raise ProviderUnavailable(self.name, "SYMBOL_SEARCH answer has no bestMatches list")
        return [m for m in matches if isinstance(m, dict) and _text(m.get("1. symbol"))]

    async def search(self, query: str, limit: int = 10) -> list[AssetProfile]:
        text = query.strip()
        if not text or limit <= 0:
            return []
        return [_match_profile(m) for m in (await self._matches(text))[:limit]]

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _overview_profile(symbol: str, data: dict[str, Any]) -> AssetProfile:
    sector_text, industry = _text(data.get("Sector")), _text(data.get("Industry"))
    asset_type = _text(data.get("AssetType"))
    returned = _text(data.get("Symbol"))
    extra: dict[str, object] = {"av_sector": sector_text} if sector_text else {}
    if returned and returned.upper() != symbol:
        extra["av_symbol"] = returned
    cik = _text(data.get("CIK"))
    return AssetProfile(
        symbol=symbol,
        name=_text(data.get("Name")),
        exchange=_text(data.get("Exchange")),
        asset_type=_ASSET_TYPES.get(asset_type.lower(), "other") if asset_type else None,
        currency=_text(data.get("Currency")),
        sector=to_gics_sector(sector_text, industry),
        # Recent payloads shout ("ELECTRONIC COMPUTERS"); title case reads better and matches older payloads.
        industry=industry.title() if industry and industry.isupper() else industry,
        country=_text(data.get("Country")),
        market_cap=parse_number(data.get("MarketCapitalization")),
        pe_ratio=parse_number(data.get("PERatio")),
        dividend_yield=parse_number(data.get("DividendYield")),  # already a fraction ("0.0051")
        cik=cik if cik and cik != "0" else None,
        extra=extra,
    )


def _match_profile(match: dict[str, Any]) -> AssetProfile:
    kind = _text(match.get("3. type"))
    extra: dict[str, object] = {}
    if region := _text(match.get("4. region")):
        extra["region"] = region  # a country or an exchange ("United States", "XETRA"): kept as given
    if score := parse_number(match.get("9. matchScore")):
        extra["match_score"] = score
    return AssetProfile(
        symbol=str(_text(match.get("1. symbol"))).upper(),
        name=_text(match.get("2. name")),
        asset_type=_ASSET_TYPES.get(kind.lower(), "other") if kind else None,
        currency=_text(match.get("8. currency")),
        extra=extra,
    )
