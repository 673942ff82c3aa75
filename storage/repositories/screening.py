"""Screening: a checked rule tree (services/screening.py) compiled to one SQL statement over the asset table.

The tree arrives already validated and normalised (known fields, ops and values; vocabulary values in the stored
spelling), as the plain data classes below, so this module only builds SQL. Every condition compiles to a
predicate that is TRUE or FALSE, never NULL: a bare ``sector <> 'X'`` is NULL for an asset with no sector, and
``NOT`` of NULL is NULL again, so ``not`` and ``ne`` would both silently drop assets whose field is unknown. Here
``ne``/``not_in`` keep them (an unknown sector is not Financials) and every other op excludes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    intersect,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    union,
    union_all,
)
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


def _in_index(names: Any) -> ColumnElement[bool]:
    # IN (members), not a correlated EXISTS: the store reads the index's few hundred members through
    # ix_asset_indices_index_name instead of probing asset_indices once for every asset the other filters admit.
    members = select(AssetIndex.asset_id).where(AssetIndex.index_name.in_(names))
    return Asset.id.in_(members)


class Values:
    """The values of a statement built once per shape and run with each call's own: every value becomes a named
    parameter (v0, v1, ... in the order the statement is built), so that the next call of the same shape (the same
    rule tree but its values, the same ranks) sends only values. Building a filtered search's statement from
    SQLAlchemy's parts costs more than running it."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any, *, expanding: bool = False) -> Any:
        name = f"v{len(self.values)}"
        self.values[name] = list(value) if expanding else value
        return bindparam(name, expanding=expanding)


def _inline(value: Any, *, expanding: bool = False) -> Any:
    """A value as it is, written into the statement (screens are built per call)."""
    return list(value) if expanding else value


def _condition_values(c: Condition) -> list[tuple[Any, bool]]:
    """The values a condition's predicate holds, in the order _condition binds them: (value, whether a list)."""
    if c.field == "index":
        return [(list(c.value) if c.op in ("in", "not_in") else [c.value], True)]
    if c.op == "contains":
        # Case-blind substring; %, _ and \ in the value match themselves.
        return [("%" + _like_escape(str(c.value).lower()) + "%", False)]
    if c.op in ("in", "not_in"):
        return [(list(c.value), True)]
    if c.op == "between":
        return [(c.value[0], False), (c.value[1], False)]
    return [(c.value, False)]


def _condition(c: Condition, bind: Any = _inline) -> ColumnElement[bool]:
    values = [bind(value, expanding=listed) for value, listed in _condition_values(c)]
    if c.field == "index":
        inside = _in_index(values[0])
        return not_(inside) if c.op in ("ne", "not_in") else inside
    column = _COLUMNS[c.field]
    if c.field in _CASE_BLIND:
        column = func.lower(column)
    known = column.is_not(None)
    if c.op == "contains":
        return and_(known, func.lower(_COLUMNS[c.field]).like(values[0], escape="\\"))
    if c.op == "eq":
        return and_(known, column == values[0])
    if c.op == "ne":
        return or_(column.is_(None), column != values[0])
    if c.op == "in":
        return and_(known, column.in_(values[0]))
    if c.op == "not_in":
        return or_(column.is_(None), column.not_in(values[0]))
    if c.op == "between":
        return and_(known, column.between(values[0], values[1]))
    compare = {"gt": column.__gt__, "gte": column.__ge__, "lt": column.__lt__, "lte": column.__le__}
    return and_(known, compare[c.op](values[0]))


def compile_rule(rule: Rule, bind: Any = _inline) -> ColumnElement[bool]:
    """The predicate of ``rule`` (TRUE or FALSE for every asset, never NULL); ``bind``: a Values, to build it with
    parameters instead of the values themselves."""
    if isinstance(rule, Condition):
        return _condition(rule, bind)
    if isinstance(rule, Not):
        return not_(compile_rule(rule.rule, bind))
    parts = [compile_rule(r, bind) for r in rule.rules]
    if isinstance(rule, AllOf):
        return and_(true(), *parts)
    return or_(false(), *parts)


def _rule_values(rule: Rule) -> list[Any]:
    """The values compile_rule binds, in its order, without building the predicate (a statement built for an earlier
    rule of the same shape is run with them)."""
    if isinstance(rule, Condition):
        return [value for value, _ in _condition_values(rule)]
    if isinstance(rule, Not):
        return _rule_values(rule.rule)
    return [value for r in rule.rules for value in _rule_values(r)]


def rule_shape(rule: Rule) -> tuple[Any, ...]:
    """What a statement built from ``rule`` depends on besides its values: the tree, its fields and ops."""
    if isinstance(rule, Condition):
        return (rule.field, rule.op)
    if isinstance(rule, Not):
        return ("not", rule_shape(rule.rule))
    return ("all" if isinstance(rule, AllOf) else "any", *[rule_shape(r) for r in rule.rules])


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


def screen_where(
    rule: Rule, *, listed_only: bool, viewer: uuid.UUID | None, bind: Any = _inline
) -> list[ColumnElement[bool]]:
    """The conditions a screen's securities meet: ``rule``, visible to ``viewer``, real; listed (``listed_only``).
    ``bind``: as for compile_rule (the viewer is a value; whether there is one is part of the shape)."""
    matches = compile_rule(rule, bind)  # first: its values come first (_values)
    visible = (
        or_(Asset.created_by.is_(None), Asset.created_by == bind(viewer)) if viewer else Asset.created_by.is_(None)
    )
    # A delisted security's verdict is invalid ("delisted on ..."); other invalid rows are tickers no source knows.
    real = or_(Asset.validation_status != "invalid", Asset.listing_status == "delisted")
    where = [matches, real, visible]
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
    return _words_like(column, [(_like_escape(w) + "%", "% " + _like_escape(w) + "%") for w in words])


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
    or words, every admitted security, largest first.

    Listed securities are searched rank by rank, each read in its order and only as far as the page needs
    (_search_by_rank); delisted ones, which the name-word index leaves out, and a phrase that does not start with a
    word (nothing a name's first word could be matched with) take one statement over every candidate instead
    (_search_candidates), as all searches did before (docs/BENCHMARKS.md, scenario 8)."""
    await _plan_per_call(session)
    if not symbol_prefix and not words:

        def build() -> Select:
            where = screen_where(rule, listed_only=listed_only, viewer=viewer, bind=Values())
            return (
                select(*HIT_COLUMNS)
                .where(*where)
                .order_by(Asset.market_cap.desc().nulls_last(), Asset.symbol)
                .offset(bindparam("offset", type_=Integer))
                .limit(bindparam("limit", type_=Integer))
            )

        stmt = _cached(("filters", rule_shape(rule), listed_only, viewer is None), build)
        params = _values(rule, viewer=viewer) | {"offset": offset, "limit": limit}
        return list((await session.execute(stmt, params)).all())
    if listed_only and (not words or phrase.startswith(words[0])):
        ranked = await _search_by_rank(
            session, rule, symbol_prefix, words, phrase, industries, viewer=viewer, needed=offset + limit
        )
        return ranked[offset:]
    where = screen_where(rule, listed_only=listed_only, viewer=viewer)
    return await _search_candidates(
        session, where, symbol_prefix, words, phrase, industries, offset, limit, listed_only=listed_only
    )


# Statements of filtered searches, built once per shape (storage/repositories/screening.py, Values) and kept for the
# life of the process: a few hundred shapes at most in practice (which filters, which ranks, how many words).
_STATEMENTS: dict[tuple[Any, ...], Any] = {}
_STATEMENTS_MAX = 2_000


def _values(rule: Rule, *, viewer: uuid.UUID | None, narrowing: bool = False) -> dict[str, Any]:
    """The parameters v0, v1, ... of a statement built with a Values from screen_where(rule, viewer) (and, with
    ``narrowing``, then _walk_narrowing(rule)), taken from ``rule`` without building anything."""
    values = _rule_values(rule) + ([viewer] if viewer else [])
    if narrowing:
        values += [value for c in _narrowing(rule) for value, _ in _condition_values(c)]
    return {f"v{i}": value for i, value in enumerate(values)}


def _cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        if len(_STATEMENTS) >= _STATEMENTS_MAX:
            _STATEMENTS.clear()
        stmt = _STATEMENTS[key] = build()
    return stmt


def _ticker_range(postgres: bool, low: Any, high: Any) -> ColumnElement[bool]:
    """Tickers from ``low`` up to ``high`` (a prefix's range: tickers are stored upper-case), off an index."""
    if postgres:
        # Byte-wise, as asset_search.py's ticker range: the database's collation may order "AAP." before "AAP", and
        # only the pattern operators use ix_assets_symbol_pattern (a plain range read a whole index,
        # ix_assets_symbol_order, 7-10 ms per search on 100,000 assets).
        return and_(Asset.symbol.op("~>=~")(low), Asset.symbol.op("~<~")(high))
    return and_(Asset.symbol >= low, Asset.symbol < high)


def _name_starts(phrase: Any) -> ColumnElement[bool]:
    return and_(Asset.name.is_not(None), func.lower(Asset.name).like(phrase, escape="\\"))


def _words_like(column: Any, patterns: Sequence[tuple[Any, Any]]) -> ColumnElement[bool]:
    """Every word at the start of ``column``'s text or of one of its words (case-blind): (start, middle) LIKE
    patterns per word."""
    text = func.lower(column)
    return and_(
        column.is_not(None),
        *[or_(text.like(start, escape="\\"), text.like(middle, escape="\\")) for start, middle in patterns],
    )


# --- ranks read in order (listed securities) ------------------------------------------------------------------------
# A name rank walks the name-word index (migration 0014) largest market cap first, in batches: the first holds this
# many entries per row the page needs, plus a few (some fail the filters); one that leaves the page short is followed
# by one WALK_GROWTH times larger, until the word's entries run out.
WALK_PER_ROW = 2
WALK_EXTRA = 20
WALK_GROWTH = 16
_W = AssetNameWord


def _narrowing(rule: Rule) -> list[Condition]:
    """The conditions of ``rule`` the name-word index can test from its own copies (sector, market cap), so that a
    walk skips what they exclude without reading the asset: the top-level conditions of an ``all``. The asset's own
    values are tested again with the rest of the rule."""
    conditions = rule.rules if isinstance(rule, AllOf) else (rule,)
    return [
        c
        for c in conditions
        if isinstance(c, Condition)
        and (
            (c.field == "sector" and c.op in ("eq", "in"))
            or (c.field == "market_cap" and c.op in ("eq", "gt", "gte", "lt", "lte", "between"))
        )
    ]


def _walk_narrowing(rule: Rule, bind: Values) -> list[ColumnElement[bool]]:
    """_narrowing's conditions on the index's copies."""
    narrowing: list[ColumnElement[bool]] = []
    for c in _narrowing(rule):
        values = [bind(value, expanding=listed) for value, listed in _condition_values(c)]
        column = _W.sector if c.field == "sector" else _W.market_cap
        if c.op == "in":
            narrowing.append(column.in_(values[0]))
        elif c.op == "between":
            narrowing.append(column.between(values[0], values[1]))
        else:
            compare = {"eq": column.__eq__, "gt": column.__gt__, "gte": column.__ge__}
            compare |= {"lt": column.__lt__, "lte": column.__le__}
            narrowing.append(compare[c.op](values[0]))
    return narrowing


def _walk(words: Sequence[int], narrowing: list[ColumnElement[bool]], *, first: bool) -> Any:
    """Up to ``size`` assets the index holds with every word of ``words`` (their numbers) at a word start
    (``first``: the name starts with the first one), largest market cap first: (asset_id, market_cap, symbol).

    One word is read off ix_asset_name_words_word_market_cap in that order, the word itself and the longer words it
    starts ("bank": "banks", "bankshares") apart, each stopping at ``size``. Several words are the intersection of
    their ranges, read whole from the index (a rare pair of common words would otherwise walk far)."""
    order = (_W.market_cap.desc().nulls_last(), _W.symbol, _W.asset_id)
    columns = (_W.asset_id, _W.market_cap, _W.symbol)
    if len(words) == 1:
        word: Any = bindparam(f"w{words[0]}")
        after: Any = bindparam(f"w{words[0]}_after")
        opening = [_W.starts_name] if first else []
        exact = select(*columns).where(_W.word == word, *narrowing, *opening)
        # DISTINCT: an asset may carry several longer words ("banks", "bankshares"), and a batch counts assets.
        longer = select(*columns).distinct().where(_W.word > word, _W.word < after, *narrowing, *opening)
        # Each part as a subquery: SQLite takes no ORDER BY or LIMIT on a compound's members. UNION, not UNION ALL:
        # an asset may carry both "bank" and "banks".
        parts = [select(p.order_by(*order).limit(bindparam("size", type_=Integer)).subquery()) for p in (exact, longer)]
        source = union(*parts).subquery()
    else:
        ranges = [
            select(*columns).where(
                _W.word >= bindparam(f"w{i}"),
                _W.word < bindparam(f"w{i}_after"),
                *narrowing,
                *([_W.starts_name] if first and n == 0 else []),
            )
            for n, i in enumerate(words)
        ]
        source = intersect(*ranges).subquery()
    return (
        select(source)
        .order_by(source.c.market_cap.desc().nulls_last(), source.c.symbol, source.c.asset_id)
        .limit(bindparam("size", type_=Integer))
        .subquery("walk")
    )


def _walked(rank: int, walk: Any, ok: ColumnElement[bool]) -> Select:
    """Every asset of a walk, with whether it is a match of ``rank`` (``ok``): the caller counts the entries read to
    know whether the word ran out. The test is a column, not a filter, so that no planner starts from a filter's own
    index instead (it cannot tell how often the name checks hold)."""
    return select(literal(rank).label("search_rank"), ok.label("search_ok"), *HIT_COLUMNS).select_from(
        walk.join(Asset, Asset.id == walk.c.asset_id)
    )


def _ranked(*parts: Select) -> Select:
    if len(parts) == 1:
        matches = parts[0].subquery("ranked")
    else:
        matches = union_all(*[select(p.subquery()) for p in parts]).subquery("ranked")
    return select(matches).order_by(matches.c.search_rank, matches.c.market_cap.desc().nulls_last(), matches.c.symbol)


class _Ranks:
    """The statements of one shape of search by rank, built on first use: the ticker ranks and each name rank's
    walk, the walks alone (read further), the industry words."""

    def __init__(self, rule: Rule, *, postgres: bool, prefix: bool, words: int, viewer: uuid.UUID | None) -> None:
        values = Values()  # the parameters _values names, in its order
        self.where = screen_where(rule, listed_only=True, viewer=viewer, bind=values)
        self.narrowing = _walk_narrowing(rule, values) if words else []
        self.prefix, self.words = prefix, words
        self.ticker = _ticker_range(postgres, bindparam("prefix"), bindparam("prefix_after")) if prefix else false()
        self.starts = _name_starts(bindparam("phrase", type_=String)) if words else false()
        self.patterns: list[tuple[Any, Any]] = [
            (bindparam(f"w{i}_start", type_=String), bindparam(f"w{i}_mid", type_=String)) for i in range(words)
        ]
        self.named = _words_like(Asset.name, self.patterns) if words else false()

    def tickers(self) -> list[Select]:
        if not self.prefix:
            return []
        hit = (literal(True).label("search_ok"), *HIT_COLUMNS)
        exact = select(literal(0).label("search_rank"), *hit).where(Asset.symbol == bindparam("prefix"), *self.where)
        # The range as a set of ids: offered beside the filters, SQLite may walk a filter's index instead.
        others = (
            select(literal(1).label("search_rank"), *hit)
            .where(Asset.id.in_(select(Asset.id).where(self.ticker)), Asset.symbol != bindparam("prefix"), *self.where)
            .order_by(Asset.market_cap.desc().nulls_last(), Asset.symbol)
            .limit(bindparam("needed", type_=Integer))
        )
        return [exact, others]

    def walk(self, rank: int, words: Sequence[int]) -> Select:
        admitted = and_(true(), *self.where)
        if rank == 2:
            ok = and_(admitted, self.starts, not_(self.ticker))
        else:
            ok = and_(admitted, self.named, not_(self.starts), not_(self.ticker))
        return _walked(rank, _walk(words, self.narrowing, first=rank == 2), ok)

    def industries(self) -> Select:
        return (
            select(*HIT_COLUMNS)
            .where(
                Asset.industry.in_(bindparam("industries", expanding=True)),
                _words_like(Asset.industry, self.patterns),
                not_(self.named),
                not_(self.starts),
                not_(self.ticker),
                *self.where,
            )
            .order_by(Asset.market_cap.desc().nulls_last(), Asset.symbol)
            .limit(bindparam("needed", type_=Integer))
        )


def _walk_alone(ranks: Callable[[], _Ranks], rank: int, words: tuple[int, ...]) -> Select:
    return _ranked(ranks().walk(rank, words))


async def _search_by_rank(
    session: AsyncSession,
    rule: Rule,
    symbol_prefix: str | None,
    words: Sequence[str],
    phrase: str,
    industries: Sequence[str],
    *,
    viewer: uuid.UUID | None,
    needed: int,
) -> list[Row[Any]]:
    """The first ``needed`` listed matches, rank after rank, each rank read only as far as the page needs.

    One statement reads the ticker ranks and a batch of each name rank's walk (the common case: the page fills from
    them); a walk that ran short of matches before its word ran out is read again, further, and industry words are
    read only when the names leave the page short. Every rank's test is the one _search_candidates applies, so both
    give the same page."""
    postgres = session.get_bind().dialect.name == "postgresql"
    built: list[_Ranks] = []  # the statements' parts, built once, for the first statement of a shape not seen yet

    def ranks() -> _Ranks:
        if not built:
            built.append(_Ranks(rule, postgres=postgres, prefix=bool(symbol_prefix), words=len(words), viewer=viewer))
        return built[0]

    size = WALK_PER_ROW * needed + WALK_EXTRA
    params = _values(rule, viewer=viewer, narrowing=bool(words)) | {"needed": needed, "size": size}
    if symbol_prefix:
        params |= {"prefix": symbol_prefix, "prefix_after": _after(symbol_prefix)}
    walks: dict[int, tuple[int, ...]] = {}
    if words:
        index_words = [w[:WORD_MAX] for w in words]
        for i, w in enumerate(words):
            params |= {
                f"w{i}": index_words[i],
                f"w{i}_after": _after(index_words[i]),
                f"w{i}_start": _like_escape(w) + "%",
                f"w{i}_mid": "% " + _like_escape(w) + "%",
            }
        params |= {"phrase": _like_escape(phrase) + "%", "industries": list(industries)}
        # Words of one letter are tested on the name only (each one's range is a twentieth of the index), unless
        # nothing else is left to walk; the first word is walked for "starts with" whatever its length.
        distinct = list(dict.fromkeys(index_words))
        longer = [index_words.index(w) for w in distinct if len(w) > 1]
        walks[3] = tuple(longer) or (index_words.index(max(distinct, key=len)),)
        walks[2] = tuple(dict.fromkeys((0, *walks[3])))
    shape = (postgres, rule_shape(rule), viewer is None, bool(symbol_prefix), len(words))
    first = _cached(
        ("ranks", *shape, walks.get(2), walks.get(3)),
        lambda: _ranked(*ranks().tickers(), *[ranks().walk(rank, walks[rank]) for rank in (2, 3) if rank in walks]),
    )
    found: dict[int, list[Row[Any]]] = {rank: [] for rank in (0, 1, 2, 3)}
    read = dict.fromkeys(walks, 0)
    for row in (await session.execute(first, params)).all():
        if row.search_rank in read:
            read[row.search_rank] += 1
        if row.search_ok:
            found[row.search_rank].append(row)
    page: list[Row[Any]] = []
    for rank in (0, 1, 2, 3):
        rows = found[rank]
        batch = size
        while rank in walks and len(page) + len(rows) < needed and read[rank] == batch:
            # The batch ran out before the page filled, and the word has more entries: read further.
            batch *= WALK_GROWTH
            stmt = _cached(("walk", *shape, rank, walks[rank]), partial(_walk_alone, ranks, rank, walks[rank]))
            result = (await session.execute(stmt, params | {"size": batch})).all()
            read[rank], rows = len(result), [r for r in result if r.search_ok]
        page += rows
        if len(page) >= needed:
            return page[:needed]
    if industries and words:
        stmt = _cached(("industries", *shape), lambda: ranks().industries())
        page += (await session.execute(stmt, params | {"needed": needed - len(page)})).all()
    return page


async def _search_candidates(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    symbol_prefix: str | None,
    words: Sequence[str],
    phrase: str,
    industries: Sequence[str],
    offset: int,
    limit: int,
    *,
    listed_only: bool,
) -> list[Row[Any]]:
    """The page of every candidate's rank: one statement that reads them all (ticker range, the first word's index
    range, the industries whose words match; with delisted securities, every delisted one too) and sorts them."""
    ranks: list[tuple[ColumnElement[bool], int]] = []
    if symbol_prefix:
        ranks += [
            (Asset.symbol == symbol_prefix, 0),
            (Asset.symbol.like(_like_escape(symbol_prefix) + "%", escape="\\"), 1),
        ]
    if words:
        ranks += [
            (_name_starts(_like_escape(phrase) + "%"), 2),
            (_words_match(Asset.name, words), 3),
            (_words_match(Asset.industry, words), 4),
        ]
    rank: Any = case(*ranks, else_=None)
    # Candidates from indexes first (the ticker range, the name-word index, the industries whose words match), so
    # that the LIKE checks of the ranks run on those rows only, never on every asset the filters admit. One set of
    # ids, read from those indexes alone: offered as an OR beside the filters, the planner may walk a filter's index
    # instead (60,000 United States rows, each checked against the candidates).
    sources: list[Any] = []
    if symbol_prefix:
        postgres = session.get_bind().dialect.name == "postgresql"
        sources.append(select(Asset.id).where(_ticker_range(postgres, symbol_prefix, _after(symbol_prefix))))
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
    stmt = (
        select(*HIT_COLUMNS)
        .where(*where, candidates, or_(*[condition for condition, _ in ranks]))
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
