"""Screening: a checked rule tree (services/screening.py) compiled to one SQL statement over the asset table.

The tree arrives already validated and normalised (known fields, ops and values; vocabulary values in the stored
spelling), as the plain data classes below, so this module only builds SQL. Every condition compiles to a
predicate that is TRUE or FALSE, never NULL: a bare ``sector <> 'X'`` is NULL for an asset with no sector, and
``NOT`` of NULL is NULL again, so ``not`` and ``ne`` would both silently drop assets whose field is unknown. Here
``ne``/``not_in`` keep them (an unknown sector is not Financials) and every other op excludes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Row, and_, case, false, func, literal, not_, or_, select, text, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Asset, AssetIndex, AssetNameWord
from storage.repositories.asset_search import WORD_MAX

__all__ = [
    "AllOf",
    "AnyOf",
    "HIT_COLUMNS",
    "Condition",
    "Not",
    "Rule",
    "SortKey",
    "asset_by_identifier",
    "distinct_values",
    "order_by",
    "screen",
    "screen_where",
    "search_screened",
]

Op = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains"]
SortKey = Literal["market_cap", "name", "symbol", "ipo_year"]


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: Op
    value: Any  # a scalar; a list for in/not_in; [low, high] for between


@dataclass(frozen=True, slots=True)
class AllOf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Not:
    rule: Rule


Rule = Condition | AllOf | AnyOf | Not

_COLUMNS: dict[str, Any] = {
    "symbol": Asset.symbol,
    "name": Asset.name,
    "asset_type": Asset.asset_type,
    "exchange": Asset.exchange,
    "sector": Asset.sector,
    "industry": Asset.industry,
    "country": Asset.country,
    "market_cap": Asset.market_cap,
    "ipo_year": Asset.ipo_year,
    "listing_status": Asset.listing_status,
}
# What a screen or a filtered search returns per security: services/schemas.py AssetHit's fields. Plain rows, not ORM
# objects: a page is loaded (and, when no index gives the order, sorted) without the JSON and audit columns.
HIT_COLUMNS: tuple[Any, ...] = (
    Asset.symbol,
    Asset.name,
    Asset.asset_type,
    Asset.exchange,
    Asset.sector,
    Asset.industry,
    Asset.country,
    Asset.market_cap,
    Asset.ipo_year,
    Asset.listing_status,
    Asset.validation_status,
)
# Compared case-blind: free text the caller types (the vocabulary fields arrive in the stored spelling instead).
_CASE_BLIND = {"name"}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _in_index(names: Sequence[str]) -> ColumnElement[bool]:
    # IN (members), not a correlated EXISTS: the store reads the index's few hundred members through
    # ix_asset_indices_index_name instead of probing asset_indices once for every asset the other filters admit.
    members = select(AssetIndex.asset_id).where(AssetIndex.index_name.in_(list(names)))
    return Asset.id.in_(members)


def _condition(c: Condition) -> ColumnElement[bool]:
    if c.field == "index":
        names = c.value if c.op in ("in", "not_in") else [c.value]
        inside = _in_index(names)
        return not_(inside) if c.op in ("ne", "not_in") else inside
    column = _COLUMNS[c.field]
    if c.field in _CASE_BLIND:
        column = func.lower(column)
    known = column.is_not(None)
    if c.op == "contains":
        # Case-blind substring; %, _ and \ in the value match themselves.
        pattern = "%" + _like_escape(str(c.value).lower()) + "%"
        return and_(known, func.lower(_COLUMNS[c.field]).like(pattern, escape="\\"))
    if c.op == "eq":
        return and_(known, column == c.value)
    if c.op == "ne":
        return or_(column.is_(None), column != c.value)
    if c.op == "in":
        return and_(known, column.in_(list(c.value)))
    if c.op == "not_in":
        return or_(column.is_(None), column.not_in(list(c.value)))
    if c.op == "between":
        low, high = c.value
        return and_(known, column.between(low, high))
    compare = {"gt": column > c.value, "gte": column >= c.value, "lt": column < c.value, "lte": column <= c.value}
    return and_(known, compare[c.op])


def compile_rule(rule: Rule) -> ColumnElement[bool]:
    """The predicate of ``rule`` (TRUE or FALSE for every asset, never NULL)."""
    if isinstance(rule, Condition):
        return _condition(rule)
    if isinstance(rule, Not):
        return not_(compile_rule(rule.rule))
    parts = [compile_rule(r) for r in rule.rules]
    if isinstance(rule, AllOf):
        return and_(true(), *parts)
    return or_(false(), *parts)


def order_by(sort_by: SortKey) -> list[Any]:
    # Unknown values last whatever the direction (NULLS LAST is spelled the same on both stores), then the ticker,
    # so that pages never overlap.
    if sort_by == "market_cap":
        return [Asset.market_cap.desc().nulls_last(), Asset.symbol]
    if sort_by == "ipo_year":
        return [Asset.ipo_year.desc().nulls_last(), Asset.market_cap.desc().nulls_last(), Asset.symbol]
    if sort_by == "name":
        return [func.lower(Asset.name).asc().nulls_last(), Asset.symbol]
    return [Asset.symbol, Asset.id]


async def _plan_per_call(session: AsyncSession) -> None:
    """PostgreSQL: plan this transaction's statements for their values, never with a cached generic plan.

    asyncpg prepares every statement, and after five runs PostgreSQL may switch to a plan made without the values
    (nor the LIMIT): for "index and sector", a walk of ix_assets_market_cap through all 100,000 assets (35-48 ms)
    instead of the index's 500 members (1.5 ms). Which plan is right depends on the values: a sector holds 9,000
    assets, an index 500, a country 60,000. Planning costs a fraction of a millisecond here; SET LOCAL ends with the
    transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


# The index that gives each sort order (migrations 0003 and 0011).
_ORDER_INDEX: dict[str, str] = {
    "market_cap": "ix_assets_market_cap",
    "ipo_year": "ix_assets_ipo_year_market_cap",
    "name": "ix_assets_name_lower",
    "symbol": "ix_assets_symbol_pattern",
}


def screen_where(rule: Rule, *, listed_only: bool, viewer: uuid.UUID | None) -> list[ColumnElement[bool]]:
    visible = or_(Asset.created_by.is_(None), Asset.created_by == viewer) if viewer else Asset.created_by.is_(None)
    # A delisted security's verdict is invalid ("delisted on ..."); other invalid rows are tickers no source knows.
    real = or_(Asset.validation_status != "invalid", Asset.listing_status == "delisted")
    where = [compile_rule(rule), real, visible]
    if listed_only:
        where.append(Asset.listing_status == "listed")
    return where


async def screen(
    session: AsyncSession,
    rule: Rule,
    *,
    sort_by: SortKey,
    offset: int,
    limit: int,
    count_cap: int,
    listed_only: bool,
    viewer: uuid.UUID | None,
) -> tuple[int, list[Row[Any]]]:
    """(how many assets match, counted up to ``count_cap`` + 1; the page at ``offset``, up to ``limit`` rows of
    HIT_COLUMNS): two statements, one predicate.

    The count stops at the cap because an exact count of a broad screen reads every match (a sector is 9,000 rows
    of table, 60 % of the store for a country), which a page ordered by an index never has to: past the cap, the
    caller says "more than" instead."""
    await _plan_per_call(session)
    where = screen_where(rule, listed_only=listed_only, viewer=viewer)
    matching = select(literal(1)).select_from(Asset).where(*where).limit(count_cap + 1).subquery()
    total = int(await session.scalar(select(func.count()).select_from(matching)) or 0)
    page = select(*HIT_COLUMNS).where(*where).order_by(*order_by(sort_by)).offset(offset).limit(limit)
    if total > count_cap:
        # Broad (over 1,000 of the store's rows): walk the index of the sort order and stop after the page, instead
        # of reading every match and sorting them (60,000 United States rows by ticker: 130 ms; walked, under 1 ms).
        # SQLite's statistics do not say that the order comes for free; PostgreSQL's planner weighs it itself.
        page = page.with_hint(Asset, f"INDEXED BY {_ORDER_INDEX[sort_by]}", "sqlite")
    return total, list((await session.execute(page)).all())


async def distinct_values(session: AsyncSession, field: str) -> list[str]:
    """The spellings a vocabulary field holds among visible listed or delisted assets (index: the index names)."""
    if field == "index":
        stmt = select(AssetIndex.index_name).distinct()
    else:
        column = _COLUMNS[field]
        stmt = select(column).where(column.is_not(None), Asset.created_by.is_(None)).distinct()
    return sorted(str(v) for v in (await session.scalars(stmt)).all())


def _after(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (code-point order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _words_match(column: Any, words: Sequence[str]) -> ColumnElement[bool]:
    """Every word at the start of ``column``'s text or of one of its words (case-blind)."""
    text = func.lower(column)
    return and_(
        column.is_not(None),
        *[
            or_(text.like(_like_escape(w) + "%", escape="\\"), text.like("% " + _like_escape(w) + "%", escape="\\"))
            for w in words
        ],
    )


async def search_screened(
    session: AsyncSession,
    rule: Rule,
    *,
    symbol_prefix: str | None,
    words: Sequence[str],
    phrase: str,
    industries: Sequence[str] = (),
    offset: int,
    limit: int,
    listed_only: bool,
    viewer: uuid.UUID | None,
) -> list[Row[Any]]:
    """Search within the securities ``rule`` admits, ranked: exact ticker (0), ticker prefix (1), name starting with
    ``phrase`` (2), name words (3), industry words (4); ties by market cap, largest first. Without a symbol prefix
    or words, every admitted security, largest first."""
    await _plan_per_call(session)
    where = screen_where(rule, listed_only=listed_only, viewer=viewer)
    ranks: list[tuple[ColumnElement[bool], int]] = []
    if symbol_prefix:
        ranks += [
            (Asset.symbol == symbol_prefix, 0),
            (Asset.symbol.like(_like_escape(symbol_prefix) + "%", escape="\\"), 1),
        ]
    if words:
        ranks += [
            (and_(Asset.name.is_not(None), func.lower(Asset.name).like(_like_escape(phrase) + "%", escape="\\")), 2),
            (_words_match(Asset.name, words), 3),
            (_words_match(Asset.industry, words), 4),
        ]
    rank: Any = case(*ranks, else_=None) if ranks else literal(0)
    if ranks:
        # Candidates from indexes first (the ticker range, the name-word index, the industries whose words match),
        # so that the LIKE checks of the ranks run on those rows only, never on every asset the filters admit.
        # One set of ids, read from those indexes alone: offered as an OR beside the filters, the planner may walk
        # a filter's index instead (60,000 United States rows, each checked against the candidates).
        sources: list[Any] = []
        if symbol_prefix:
            low, high = symbol_prefix, _after(symbol_prefix)
            if session.get_bind().dialect.name == "postgresql":
                # Byte-wise, as asset_search.py's ticker range: the database's collation may order "AAP." before
                # "AAP", and only the pattern operators use ix_assets_symbol_pattern (a plain range read a whole
                # index, ix_assets_symbol_order, 7-10 ms per search on 100,000 assets).
                ticker = and_(Asset.symbol.op("~>=~")(low), Asset.symbol.op("~<~")(high))
            else:
                ticker = and_(Asset.symbol >= low, Asset.symbol < high)
            sources.append(select(Asset.id).where(ticker))
        if words:
            word = words[0][:WORD_MAX]
            sources.append(
                select(AssetNameWord.asset_id).where(AssetNameWord.word >= word, AssetNameWord.word < _after(word))
            )
        if industries:
            sources.append(select(Asset.id).where(Asset.industry.in_(list(industries))))
        candidates: ColumnElement[bool] = Asset.id.in_(union_all(*sources) if len(sources) > 1 else sources[0])
        if not listed_only:
            candidates = or_(candidates, Asset.listing_status == "delisted")  # the name-word index holds listed only
        where += [candidates, or_(*[condition for condition, _ in ranks])]
    stmt = (
        select(*HIT_COLUMNS)
        .where(*where)
        .order_by(rank, Asset.market_cap.desc().nulls_last(), Asset.symbol)
        .offset(offset)
        .limit(limit)
    )
    return list((await session.execute(stmt)).all())


async def asset_by_identifier(
    session: AsyncSession, *, isin: str | None = None, cik: str | None = None, figi: str | None = None
) -> list[Asset]:
    """Confirmed securities carrying an identifier (an issuer's CIK can name several listings), listed first."""
    column, value = (Asset.isin, isin) if isin else (Asset.cik, cik) if cik else (Asset.figi, figi)
    stmt = (
        select(Asset)
        .where(column == value, Asset.created_by.is_(None))
        .order_by(Asset.listing_status.desc(), Asset.market_cap.desc().nulls_last(), Asset.symbol)
        .limit(50)
    )
    return list((await session.scalars(stmt)).all())
