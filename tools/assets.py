"""The `assets` toolset: validate symbols, search and screen the security master, read one asset, list sectors."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from mcp.server.mcpserver.prompts.base import UserMessage
from pydantic import BaseModel, Field, WithJsonSchema

from services.assets import SearchPage, SectorCount
from services.errors import LimitExceeded
from services.schemas import AssetInfo, ScreenPage, SymbolVerdict
from services.screening import FIELDS, MAX_CONDITIONS, MAX_DEPTH, MAX_IN_VALUES, SORT_KEYS
from services.symbols import normalise_symbol, normalise_symbols, symbol_problem
from tools._deps import Deps
from tools._results import Envelope, NextAction, attention_first, ok
from tools._toolset import READ, PromptSpec, Toolset, ToolSpec

__all__ = ["TOOLSET"]

# Validation asks outside providers and records verdicts, so it is neither read-only in effect on the cache nor
# closed-world; it changes no universe, so it is exposed in read-only mode.
VALIDATE = READ.model_copy(update={"open_world_hint": True})


class Verdicts(BaseModel):
    verdicts: list[SymbolVerdict] = Field(description="In input order; when not all fit, invalid and pending first.")
    counts: dict[str, int] = Field(description="How many symbols got each status (all of them).")
    unlisted: list[str] = Field(
        default_factory=list, description="Symbols checked but not listed (ask again for them: answered from cache)."
    )


_RANK = {"invalid": 0, "pending": 1}


class AssetDetail(BaseModel):
    asset: AssetInfo
    former_symbol: str | None = Field(None, description="Set when the ticker asked for is an old one of this asset.")
    note: str | None = Field(
        None, description="What the ticker meant (at as_of): a rename, a delisting, a ticker used by another before."
    )
    as_of: date | None = Field(None, description="The date asked about, when one was given.")


class Sectors(BaseModel):
    sectors: list[SectorCount]


async def validate_symbols(
    deps: Deps,
    symbols: Annotated[
        list[str],
        Field(
            description="Up to {settings.max_inline_validation} tickers (AAPL, BRK.B, ^GSPC, EURUSD=X). For more, use start_bulk_validation."
        ),
    ],
    force_refresh: Annotated[bool, Field(description="Ignore cached verdicts and ask the providers again.")] = False,
) -> Envelope[Verdicts]:
    """Check whether tickers are real listed securities before using them: up to {settings.max_inline_validation} inline (more: start_bulk_validation).

    Each verdict is valid (with a profile: name, exchange, sector ...), invalid (with similar symbols as candidates)
    or pending (no provider could answer now: never treat pending as invalid), with its source (listings, yahoo,
    alpha_vantage, catalog) and whether it came from the cache.
    """
    cap = deps.state.settings.max_inline_validation
    if len(symbols) > cap:
        raise LimitExceeded(
            f"{len(symbols)} symbols; validate_symbols answers at most {cap} inline.",
            hint=f"Use start_bulk_validation for larger lists (up to {deps.state.settings.max_bulk_symbols:,} symbols); "
            "it runs in the background "
            "and reports progress.",
            details={"limit": cap, "received": len(symbols), "bulk_tool": "start_bulk_validation"},
        )
    normalised = normalise_symbols(symbols)
    validation = deps.state.validation
    # All cached: answer without opening a unit of work (no database, no provider).
    verdicts = None if force_refresh else await validation.from_cache(normalised)
    if verdicts is None:
        async with deps.unit_of_work() as session:
            verdicts = await validation.validate(
                session, normalised, force_refresh=force_refresh, owner_id=deps.caller.owner_id
            )
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    actions: list[NextAction] = []
    pending = [v.symbol for v in verdicts if v.status == "pending"]
    if pending:
        actions.append(
            NextAction(
                tool="start_bulk_validation",
                arguments={"symbols": pending},
                reason="keep checking the pending symbols in the background",
            )
        )
    for v in verdicts:
        if v.status == "invalid" and v.candidates:
            actions.append(
                NextAction(
                    tool="validate_symbols",
                    arguments={"symbols": v.candidates[:5]},
                    reason=f"check the candidates for {v.symbol}",
                )
            )
            break
    summary = ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing to check"
    # Fifty valid verdicts with their profiles run to ~20 KB: list what needs attention first, within the result
    # budget, and name the rest (their verdicts are cached now, so asking again for them is cheap).
    listed = attention_first(verdicts, lambda v: _RANK.get(v.status, 2))
    shown = {v.symbol for v in listed}
    unlisted = [v.symbol for v in verdicts if v.symbol not in shown]
    if unlisted:
        actions.append(
            NextAction(
                tool="validate_symbols",
                arguments={"symbols": unlisted},
                reason=f"the verdicts on {len(unlisted)} more symbol(s), not listed to keep this answer short",
            )
        )
        summary += f"; {len(listed)} listed, invalid and pending first"
    return ok(
        Verdicts(verdicts=listed, counts=counts, unlisted=unlisted),
        f"Validated {len(verdicts)} symbol(s): {summary}.",
        next_actions=actions,
        cached=sum(v.cached for v in verdicts),
    )


_MarketCap = Annotated[float | None, Field(ge=0, allow_inf_nan=False)]


async def search_assets(
    deps: Deps,
    query: Annotated[
        str | None,
        Field(
            description='Ticker prefix ("NVD"), company name or industry words ("nvidia", "semiconductor"), or an '
            "identifier (ISIN US0378331005, CIK 320193, FIGI). Optional when a filter is given.",
            max_length=100,
        ),
    ] = None,
    asset_type: Annotated[
        str | None, Field(description="stock, etf, adr, fund, preferred, unit, warrant, …", max_length=32)
    ] = None,
    sector: Annotated[
        str | None,
        Field(description='Only this GICS sector, e.g. "Information Technology" (see list_sectors).', max_length=60),
    ] = None,
    industry: Annotated[
        str | None,
        Field(
            description='Industry words, matched in part ("semiconductor"); list_sectors names them.', max_length=128
        ),
    ] = None,
    country: Annotated[
        str | None, Field(description='The issuer\'s country, e.g. "United States".', max_length=64)
    ] = None,
    exchange: Annotated[
        str | None, Field(description="NASDAQ, NYSE, NYSE Arca, NYSE American, …", max_length=64)
    ] = None,
    index: Annotated[
        str | None, Field(description='An index the security belongs to, e.g. "S&P 500".', max_length=64)
    ] = None,
    min_market_cap: Annotated[_MarketCap, Field(description="US dollars, e.g. 1e10.")] = None,
    max_market_cap: Annotated[_MarketCap, Field(description="US dollars.")] = None,
    include_delisted: Annotated[bool, Field(description="Also securities that no longer trade.")] = False,
    limit: Annotated[int, Field(description="Results per page (1-{settings.page_size_max}).")] = 20,
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
) -> Envelope[SearchPage]:
    """Find securities in the security master (every US listing, ETFs included) by ticker prefix, company name or
    industry words, or an ISIN/CIK/FIGI, narrowed by any of the filters (each also usable alone). Ranked: exact
    ticker, ticker prefix, name start, name words, industry words; with filters, ties go to the largest market cap.
    Use it to turn a name or a theme into tickers instead of guessing; screen_assets combines conditions freely.
    When online and a plain name query finds fewer than limit, Yahoo and Alpha Vantage are searched too: their
    results come after the store's, labelled with their source, validation_status pending until validated.
    """
    async with deps.unit_of_work() as session:
        page = await deps.assets(session).search(
            query,
            sector=sector,
            asset_type=asset_type,
            industry=industry,
            country=country,
            exchange=exchange,
            index=index,
            min_market_cap=min_market_cap,
            max_market_cap=max_market_cap,
            include_delisted=include_delisted,
            limit=limit,
            cursor=cursor,
        )
    asked = {"query": query} if query else {}
    actions = []
    if page.next_cursor:
        actions.append(
            NextAction(
                tool="search_assets",
                arguments={**asked, **page.filters, "limit": limit, "cursor": page.next_cursor},
                reason="more results",
            )
        )
    listed = [a.symbol for a in page.assets if a.listing_status == "listed"]
    if len(listed) > 1:
        actions.append(
            NextAction(
                tool="create_universe",
                arguments={"name": _search_title(query, page.filters), "symbols": listed},
                reason="keep these securities as a universe (drop the ones that do not fit first)",
            )
        )
    online = [a for a in page.assets if a.source]
    found_online = [a.symbol for a in online if a.validation_status == "pending"]
    if found_online:
        actions.append(
            NextAction(
                tool="validate_symbols",
                arguments={"symbols": found_online[: deps.state.settings.max_inline_validation]},
                reason="confirm the securities found online before relying on them",
            )
        )
    if not page.assets and query and symbol_problem(normalise_symbol(query)) is None:
        actions.append(
            NextAction(
                tool="validate_symbols",
                arguments={"symbols": [normalise_symbol(query)]},
                reason="ask the market-data providers directly",
            )
        )
    described = " ".join(f"{k}={v}" for k, v in page.filters.items())
    return ok(
        page,
        f"{len(page.assets)} asset(s) match"
        + (f" {query!r}" if query else "")
        + (f" ({described})" if described else "")
        + (f" by {page.matched_by}" if page.matched_by else "")
        + (
            f", {len(online)} of them found online ({', '.join(sorted({a.source or '' for a in online}))})"
            if online
            else ""
        )
        + ".",
        next_actions=actions,
        count=len(page.assets),
    )


def _search_title(query: str | None, filters: dict[str, Any]) -> str:
    words = [query.strip()] if query else []
    words += [str(v) for k, v in filters.items() if k not in ("include_delisted", "min_market_cap", "max_market_cap")]
    return ("Search: " + ", ".join(words))[:100].rstrip()


async def get_asset(
    deps: Deps,
    symbol: Annotated[
        str, Field(description="A ticker, e.g. AAPL or BRK.B (BRK-B and BRK/B work too).", max_length=40)
    ],
    as_of: Annotated[
        date | None,
        Field(description="A past date (YYYY-MM-DD): the security that used the ticker on that day. Default: today."),
    ] = None,
) -> Envelope[AssetDetail]:
    """Get one security: name, exchange, listing status (delisted with the date), GICS sector, industry, market
    cap, P/E, dividend yield (a fraction), validation status and source. Old tickers resolve to the current one
    (ZI -> GTM); a reused ticker resolves by as_of (FB at 2021-06-01 is Meta, now META; FB today is an ETF). Unknown
    tickers are validated on the spot.
    """
    async with deps.unit_of_work() as session:
        found = await deps.assets(session).get(symbol, as_of)
    asset = found.asset
    former = f" (asked as {found.former_symbol})" if found.former_symbol else ""
    note = f" {found.note}." if found.note else ""
    return ok(
        AssetDetail(asset=asset, former_symbol=found.former_symbol, note=found.note, as_of=found.as_of),
        f"{asset.symbol}{former}: {asset.name or 'name unknown'}, {asset.listing_status}, "
        f"{asset.validation_status}.{note}",
    )


_SCALAR: dict[str, Any] = {"type": ["string", "number"]}


def _fields_by_ops() -> dict[tuple[str, ...], list[str]]:
    grouped: dict[tuple[str, ...], list[str]] = {}
    for name, spec in FIELDS.items():
        grouped.setdefault(spec.ops, []).append(name)
    return grouped


# The published shape of a rule. The tree is recursive; its inner rules are described, not re-expanded, and every
# level is checked by services/screening.py, which names the exact place of a problem (pydantic's union errors
# would not).
RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        'A rule: {"field": F, "op": OP, "value": V}, or {"all": [rule, ...]}, {"any": [rule, ...]}, {"not": rule}. '
        + "; ".join(f"{', '.join(names)} take {', '.join(ops)}" for ops, names in _fields_by_ops().items())
        + f". market_cap is in US dollars; in/not_in take a list (at most {MAX_IN_VALUES}), between [low, high]. "
        f"At most {MAX_CONDITIONS} conditions, {MAX_DEPTH} levels deep."
    ),
    "anyOf": [
        {
            "title": "condition",
            "type": "object",
            "properties": {
                "field": {"enum": list(FIELDS)},
                "op": {"enum": sorted({op for spec in FIELDS.values() for op in spec.ops})},
                "value": {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}]},
            },
            "required": ["field", "op", "value"],
            "additionalProperties": False,
        },
        *(
            {
                "title": group,
                "type": "object",
                "properties": {group: {"type": "array", "items": {"type": "object"}, "minItems": 1}},
                "required": [group],
                "additionalProperties": False,
            }
            for group in ("all", "any")
        ),
        {
            "title": "not",
            "type": "object",
            "properties": {"not": {"type": "object"}},
            "required": ["not"],
            "additionalProperties": False,
        },
    ],
}


def _title(node: dict[str, Any]) -> str:
    """The rules in words, for the name a next action proposes ("industry contains semiconductor and ...")."""
    if "all" in node or "any" in node:
        group = "all" if "all" in node else "any"
        return f" {'and' if group == 'all' else 'or'} ".join(_title(r) for r in node[group])
    if "not" in node:
        return f"not ({_title(node['not'])})"
    value = node["value"]
    shown = (
        "/".join(str(v) for v in value[:3])
        if isinstance(value, list)
        else f"{value:g}"
        if isinstance(value, float)
        else value
    )
    return f"{node['field']} {node['op']} {shown}"


async def screen_assets(
    deps: Deps,
    rules: Annotated[dict[str, Any], WithJsonSchema(RULES_SCHEMA)],
    sort_by: Annotated[
        str,
        WithJsonSchema({"enum": list(SORT_KEYS)}),
        Field(description="market_cap (largest first, the default), name, symbol or ipo_year (newest first)."),
    ] = "market_cap",
    limit: Annotated[int, Field(description="Results per page (1-{settings.page_size_max}).")] = 50,
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page (same rules).")] = None,
) -> Envelope[ScreenPage]:
    """Find every listed security matching rules over the security master (sector, industry, country, exchange,
    asset type, market cap, IPO year, index, name, ticker; all/any/not). E.g. large US chip makers: {"all":
    [{"field": "industry", "op": "contains", "value": "semiconductor"}, {"field": "country", "op": "eq", "value":
    "United States"}, {"field": "market_cap", "op": "gte", "value": 1e10}]}. Returns the total (counted up to 1,000;
    total_capped says when more match), a page (largest first), the rules as applied and the data's date; delisted
    securities only when a rule names listing_status.
    """
    async with deps.unit_of_work() as session:
        page = await deps.screening(session).screen(rules, sort_by=sort_by, limit=limit, cursor=cursor)
    actions: list[NextAction] = []
    # Past services/screening.py's MAX_TOTAL the count stops: "more than 1,000", never a made-up exact figure.
    total = f"more than {page.total:,}" if page.total_capped else str(page.total)
    if page.next_cursor:
        actions.append(
            NextAction(
                tool="screen_assets",
                arguments={"rules": page.rules, "sort_by": page.sort_by, "limit": limit, "cursor": page.next_cursor},
                reason=f"the next {limit} of {total}",
            )
        )
    symbols = [a.symbol for a in page.assets if a.listing_status == "listed"]
    quota = deps.state.limits.quotas.members_per_universe
    if symbols and not page.total_capped and (not quota or page.total <= quota):
        # Listed before the static list: a client keying next actions by tool keeps the last of two.
        actions.append(
            NextAction(
                tool="create_universe",
                arguments={"name": f"Rules: {_title(page.rules)}"[:100].rstrip(), "rules": page.rules},
                reason=f"keep all {total} as a dynamic universe that follows these rules (add rebalance, e.g. "
                "monthly, to re-run them on a schedule)",
            )
        )
    if symbols:
        cap = deps.state.limits.max_symbols_per_call
        actions.append(
            NextAction(
                tool="create_universe",
                arguments={"name": f"Screen: {_title(page.rules)}"[:100].rstrip(), "symbols": symbols[:cap]},
                reason="keep these securities as a universe (rename it to say what it is for)",
            )
        )
    shown = ", ".join(a.symbol for a in page.assets[:10]) + (", …" if len(page.assets) > 10 else "")
    return ok(
        page,
        f"{total} securities match"
        + (f"; showing {len(page.assets)}: {shown}" if page.assets else "")
        + (f" (listings as of {page.data_as_of.isoformat()})." if page.data_as_of else "."),
        next_actions=actions,
        count=len(page.assets),
        total=page.total,
    )


def find_securities(sector: str, industry: str = "", country: str = "United States") -> list[UserMessage]:
    """Find the securities of a sector (and an industry, a country) and offer to keep them as a universe."""
    where = f"in the {sector} sector" + (f", industry {industry!r}" if industry else "")
    where += f", from {country}" if country else ""
    return [
        UserMessage(
            f"Find the listed securities {where} with screen_assets (largest first), using the names exactly as "
            "list_sectors and the completions spell them. Show the twenty largest with their market caps, say how "
            "many match in all, and offer to keep them as a universe (create_universe)."
        )
    ]


async def list_sectors(deps: Deps) -> Envelope[Sectors]:
    """List the 11 GICS sectors with how many known assets each has, and the industries filed under each (with
    counts). Use these names for search_assets(sector=...) and in screen_assets rules (sector, industry)."""
    async with deps.unit_of_work() as session:
        sectors = await deps.assets(session).sectors()
    return ok(Sectors(sectors=sectors), f"{len(sectors)} sectors.")


TOOLSET = Toolset(
    id="assets",
    description="Validate tickers and look up securities.",
    instructions="Never invent tickers: find securities for a theme with search_assets (words and filters) or "
    "screen_assets (rules), check a ticker you already have with validate_symbols, and treat validation_status "
    "'pending' as not yet checked, not as invalid.",
    tools=[
        ToolSpec(validate_symbols, "Validate symbols", VALIDATE, scope="validate"),
        # Online, a search may ask Yahoo and Alpha Vantage (open world); it spends their quota only for a caller
        # with the validate scope (tools/_deps.py), so it stays read class for everyone else.
        ToolSpec(search_assets, "Search assets", VALIDATE),
        # get_asset validates unknown tickers on the spot: it may spend provider quotas, so it is validate class.
        ToolSpec(get_asset, "Get asset", VALIDATE, scope="validate"),
        ToolSpec(screen_assets, "Screen assets", READ),
        ToolSpec(list_sectors, "List sectors", READ),
    ],
    prompts=[PromptSpec(find_securities, "Find securities by sector")],
)
