"""Asset search on an index of name words, and the upkeep of that index.

Search semantics (unchanged from the LIKE scan it replaces): listed, not-invalid assets whose ticker starts with the
symbol prefix, or whose lower-cased name has every query word at its start or after a space; optionally in one
sector; ranked exact ticker, then ticker prefix, then name matches, each by (length(symbol), symbol).

How it stays fast at 100,000+ assets (docs/BENCHMARKS.md, scenario 2):

* ``asset_name_words`` holds every word of every name, so the assets carrying a word prefix are an index range.
* One statement counts (up to a cap) the candidates of each part: the ticker-prefix range and each word's range.
  A part with few candidates reads just those and sorts them; a part with many walks ``ix_assets_symbol_order``
  (ranking order) and stops after one page, which is quick precisely because matches are frequent.
* Every candidate is re-checked with the exact predicate above: the index only narrows, it never decides. The one
  assumption is that tickers are stored upper-case (every write path normalises them), which lets a ticker prefix
  use the plain index range.
"""

from __future__ import annotations

import string
import time
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Row,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Asset, AssetNameWord

__all__ = [
    "IndexedAsset",
    "copy_market_cap",
    "indexed",
    "name_word_rows",
    "name_words",
    "replace_name_words",
    "search_assets",
]

# Name candidates: up to this many are all read and checked; more, the best-ranked few are picked from the index;
# beyond WALK_ABOVE (or CANDIDATES_PER_ROW per row a deep page needs), assets are walked in ranking order instead.
ALL_CANDIDATES_MAX = 200
WALK_ABOVE = 3_000
CANDIDATES_PER_ROW = 20
# A shortlist holds this many candidates per row of the page, plus a few: some fail the exact checks.
SHORTLIST_PER_ROW = 2
SHORTLIST_EXTRA = 20
# Several words: their index ranges are intersected, and the intersection is checked whole below this smallest range.
INTERSECTION_ALL_MAX = 1_000
# Ticker-prefix candidates are read from the table itself (no covering index), so they are walked sooner.
TICKER_CANDIDATES_MAX = 1_000
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
WORD_MAX = 300  # longest indexed word (longer ones are cut to it, and so is a query word)


# --- the index ----------------------------------------------------------------------------------------------------
def name_words(name: str | None) -> set[str]:
    """The words of ``name`` as search matches them: each piece after the start or a space, lower-cased.

    A superset across lower-casings: SQLite's lower() folds ASCII only, PostgreSQL's follows the locale, and accents
    may decompose; every variant's words are indexed, and the search re-checks candidates exactly.
    """
    return _words(name)[0]


def _words(name: str | None) -> tuple[set[str], set[str]]:
    """(every word of ``name``, the words it starts with): name_words, and the first word of each lower-casing."""
    if not name:
        return set(), set()
    lowered = name.lower()
    decomposed = "".join(c for c in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(c))
    words: set[str] = set()
    first: set[str] = set()
    for variant in {name.translate(_ASCII_LOWER), lowered, decomposed}:
        pieces = [w[:WORD_MAX] for w in variant.split(" ") if w]
        words.update(pieces)
        first.update(pieces[:1])
    return words, first


def name_word_rows(
    asset_id: uuid.UUID, name: str | None, sector: str | None, symbol: str, market_cap: float | None = None
) -> list[dict[str, Any]]:
    words, first = _words(name)
    return [
        {
            "word": w,
            "asset_id": asset_id,
            "sector": sector,
            "symbol": symbol,
            "market_cap": market_cap,
            "starts_name": w in first,
        }
        for w in sorted(words)
    ]


# id, name, sector, symbol, market_cap: what the index copies
IndexedAsset = tuple[uuid.UUID, str | None, str | None, str, float | None]


def indexed(asset: Asset) -> IndexedAsset:
    return (asset.id, asset.name, asset.sector, asset.symbol, asset.market_cap)


async def replace_name_words(session: AsyncSession, assets: Iterable[IndexedAsset], *, new: bool = False) -> None:
    """Index the names of ``assets``; ``new`` skips deleting rows that cannot exist yet."""
    items = list(assets)
    if not new:
        for start in range(0, len(items), 500):  # SQLite caps bound parameters per statement
            ids = [item[0] for item in items[start : start + 500]]
            await session.execute(delete(AssetNameWord).where(AssetNameWord.asset_id.in_(ids)))
    rows = [row for item in items for row in name_word_rows(*item)]
    for start in range(0, len(rows), 5_000):
        await session.execute(insert(AssetNameWord), rows[start : start + 5_000])


async def copy_market_cap(session: AsyncSession, asset_id: uuid.UUID, market_cap: float | None) -> None:
    """Keep the index's copy of an asset's market cap (the order a filtered search walks a word in) current."""
    await session.execute(update(AssetNameWord).where(AssetNameWord.asset_id == asset_id).values(market_cap=market_cap))


# --- the query ----------------------------------------------------------------------------------------------------
# What a search returns per asset: services/schemas.py AssetInfo's fields. Plain rows, not ORM objects: a page of
# assets costs a third less to load, and the search index's JSON and audit columns are never read.
RESULT_COLUMNS = (
    "id",
    "symbol",
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
    "validation_status",
    "validation_source",
    "last_validated_at",
    "listing_status",
    "ipo_year",
)
# Candidate counts (capped) steer which route a search takes, never what it returns: they are reused for a while
# instead of being counted on every search (one statement less), and may be stale without harm.
COUNTS_TTL_S = 60.0
_COUNTS: dict[tuple[Any, ...], tuple[float, int]] = {}

# Statements are built once per shape (which parts, which routes, how many words) with every value a bound
# parameter: building and keying a statement this size costs more than running it.
_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _after(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (code-point order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _cached(shape: tuple[Any, ...], build: Any) -> Any:
    stmt = _STATEMENTS.get(shape)
    if stmt is None:
        stmt = _STATEMENTS[shape] = build()
    return stmt


def _ticker_range(postgres: bool) -> ColumnElement[bool]:
    """Tickers starting with the prefix, as an index range compared byte-wise.

    PostgreSQL compares text by the database's collation, under which a range is not a prefix ("AAP." may sort
    before "AAP"); its pattern operators compare bytes and use ix_assets_symbol_pattern. SQLite compares bytes.
    """
    if postgres:
        return and_(Asset.symbol.op("~>=~")(bindparam("p")), Asset.symbol.op("~<~")(bindparam("p_after")))
    return and_(Asset.symbol >= bindparam("p"), Asset.symbol < bindparam("p_after"))


def _word_range(i: int, sector: bool, *columns: Any) -> Select:
    stmt = select(*(columns or (AssetNameWord.asset_id,))).where(
        AssetNameWord.word >= bindparam(f"w{i}_lo"), AssetNameWord.word < bindparam(f"w{i}_hi")
    )
    return stmt.where(AssetNameWord.sector == bindparam("sector")) if sector else stmt


def _capped_count(stmt: Select) -> Any:
    return select(func.count()).select_from(stmt.limit(bindparam("cap")).subquery()).scalar_subquery()


def _part(rank: int, sector: bool, *conditions: ColumnElement[bool], by_cap: bool = False) -> Select:
    """Listed, not-invalid assets meeting ``conditions``, by (length(symbol), symbol), ``needed`` at most;
    ``by_cap``: largest market cap first (for candidates that are all read anyway), then that order.

    When ``conditions`` name the candidates (a ticker range, ids from the word index), those are read and sorted;
    when they name none (a walk), the planner reads assets in ranking order (ix_assets_symbol_order) until enough
    match. Either way the sector test is made non-indexable: the planner would rather read the whole sector (a
    tenth of the store) and sort it.
    """
    if sector:
        conditions = (*conditions, func.coalesce(Asset.sector, "") == bindparam("sector"))
    cap = Asset.market_cap if by_cap else literal(None, type_=Asset.market_cap.type)
    order = [*([Asset.market_cap.desc().nulls_last()] if by_cap else []), func.length(Asset.symbol), Asset.symbol]
    return (
        select(Asset.id, Asset.symbol, literal(rank).label("search_rank"), cap.label("search_cap"))
        .where(Asset.listing_status == "listed", Asset.validation_status != "invalid", _visible(), *conditions)
        .order_by(*order)
        .limit(bindparam("needed"))
    )


def _visible() -> ColumnElement[bool]:
    """Confirmed assets, and the unconfirmed ones the searching owner created (``viewer``; null: none of them).

    Another tenant's made-up tickers never reach a search (storage/models.py, Asset.created_by); the index may still
    count them as candidates, which only steers the route."""
    return or_(Asset.created_by.is_(None), Asset.created_by == bindparam("viewer", type_=Asset.created_by.type))


def _name_match(words: int) -> ColumnElement[bool]:
    name = func.lower(Asset.name)
    return and_(
        *[
            or_(name.like(bindparam(f"w{i}_start"), escape="\\"), name.like(bindparam(f"w{i}_mid"), escape="\\"))
            for i in range(words)
        ]
    )


def _prefix_like() -> ColumnElement[bool]:
    return Asset.symbol.like(bindparam("p_like"), escape="\\")


def _candidates(used: tuple[int, ...], sector: bool, *columns: Any) -> Select | CompoundSelect:
    """Assets carrying every word in ``used`` (by word index), from the index alone."""
    first = _word_range(used[0], sector, *columns)
    return first.intersect(*[_word_range(i, sector, *columns) for i in used[1:]]) if len(used) > 1 else first


def _main_statement(shape: tuple[Any, ...]) -> Select:
    """The page of the parts' concatenation in rank order: exact ticker (0), other ticker-prefix matches (1), name
    matches that are neither (2), ties by market cap where the route read every candidate, else by ticker. Each part supplies up to offset+limit rows; one statement returns the assets."""
    postgres, prefix, ticker_walk, words, name_route, used, sector = shape
    parts: list[Select] = []
    if prefix:
        parts.append(_part(0, sector, Asset.symbol == bindparam("p")))
        others = (_prefix_like(), Asset.symbol != bindparam("p"))
        parts.append(_part(1, sector, *others) if ticker_walk else _part(1, sector, _ticker_range(postgres), *others))
    if words:
        conditions = [_name_match(words), *([not_(_prefix_like())] if prefix else [])]
        if name_route == "walk":
            parts.append(_part(2, sector, *conditions))
        elif name_route == "shortlist":
            # The index holds each candidate's ticker: shortlist the best-ranked few from it alone, check only those.
            both = _candidates(used, sector, AssetNameWord.asset_id, AssetNameWord.symbol).subquery()
            shortlist = (
                select(both.c.asset_id)
                .order_by(func.length(both.c.symbol), both.c.symbol)
                .limit(bindparam("shortlist"))
            )
            parts.append(_part(2, sector, Asset.id.in_(shortlist), *conditions))
        else:
            # Every candidate is read here, so name matches can rank as a person expects: "apple" finds Apple Inc.
            # before the small companies and ETFs whose names also start with Apple.
            parts.append(_part(2, sector, Asset.id.in_(_candidates(used, sector)), *conditions, by_cap=True))
    matches = union_all(*[select(p.subquery()) for p in parts]).subquery("matches")
    return (
        select(*[Asset.__table__.c[name] for name in RESULT_COLUMNS])
        .join(matches, matches.c.id == Asset.id)
        .order_by(
            matches.c.search_rank,
            matches.c.search_cap.desc().nulls_last(),
            func.length(matches.c.symbol),
            matches.c.symbol,
        )
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )


async def search_assets(
    session: AsyncSession,
    *,
    symbol_prefix: str | None,
    name_words: Sequence[str],
    sector: str | None,
    offset: int,
    limit: int,
    viewer: uuid.UUID | None = None,
) -> list[Row[Any]]:
    """Listed, not-invalid assets matching a symbol prefix or all name words (each at a word start), ranked; only
    those ``viewer`` may see (confirmed ones, and the unconfirmed ones it created).

    Rows of RESULT_COLUMNS (attribute access, like the ORM objects they replace)."""
    words = [w for w in name_words if w]
    if not symbol_prefix and not words:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    needed = offset + limit
    cap = max(WALK_ABOVE, CANDIDATES_PER_ROW * needed) + 1
    params: dict[str, Any] = {
        "needed": needed,
        "offset": offset,
        "limit": limit,
        "cap": cap,
        "sector": sector,
        "shortlist": SHORTLIST_PER_ROW * needed + SHORTLIST_EXTRA,
        "viewer": viewer,
    }
    for i, w in enumerate(words):
        params.update(
            {
                f"w{i}_lo": w,
                f"w{i}_hi": _after(w),
                f"w{i}_start": _like_escape(w) + "%",
                f"w{i}_mid": "% " + _like_escape(w) + "%",
            }
        )
    if symbol_prefix:
        params.update(p=symbol_prefix, p_after=_after(symbol_prefix), p_like=_like_escape(symbol_prefix) + "%")

    counts = await _candidate_counts(session, words, symbol_prefix, sector, cap, params, postgres)
    ticker_walk = bool(symbol_prefix) and counts.pop() > TICKER_CANDIDATES_MAX
    route, used = await _name_route(session, counts, bool(sector), cap, params)
    shape = (postgres, bool(symbol_prefix), ticker_walk, len(words), route, used, bool(sector))
    found = (await session.execute(_cached(shape, lambda: _main_statement(shape)), params)).all()
    if len(found) < limit and route == "shortlist":
        # The exact checks left a short page: candidates past the shortlist may rank next. Read them all.
        shape = (*shape[:4], "all", used, shape[6])
        found = (await session.execute(_cached(shape, lambda: _main_statement(shape)), params)).all()
    return list(found)


async def _candidate_counts(
    session: AsyncSession,
    words: list[str],
    prefix: str | None,
    sector: str | None,
    cap: int,
    params: dict[str, Any],
    postgres: bool,
) -> list[int]:
    """Each word's candidates and the ticker range's (last), counted up to ``cap``: from recent counts, else in one
    statement."""
    now = time.monotonic()
    keys = [("word", w, sector, cap) for w in words] + ([("ticker", prefix, cap)] if prefix else [])
    known = [_COUNTS.get(key) for key in keys]
    fresh = [k[1] for k in known if k is not None and now - k[0] < COUNTS_TTL_S]
    if len(fresh) == len(known):
        return fresh

    def probe() -> Select:
        counts = [_capped_count(_word_range(i, bool(sector))) for i in range(len(words))]
        if prefix:
            counts.append(_capped_count(select(Asset.id).where(_ticker_range(postgres))))
        return select(*counts)

    counted = list(
        (
            await session.execute(_cached(("probe", postgres, bool(prefix), len(words), bool(sector)), probe), params)
        ).one()
    )
    if len(_COUNTS) > 10_000:
        _COUNTS.clear()
    _COUNTS.update({key: (now, n) for key, n in zip(keys, counted, strict=True)})
    return counted


async def _name_route(
    session: AsyncSession, counts: list[int], sector: bool, cap: int, params: dict[str, Any]
) -> tuple[str, tuple[int, ...]]:
    """How to find the name matches, for their numbers: the route, and the words whose index ranges it reads.

    "all": read and check every asset carrying all ``used`` words; "shortlist": the same, but only the best-ranked
    few (picked from the index); "walk": read assets in ranking order until enough match.
    """
    if not counts:
        return "none", ()
    order = sorted(range(len(counts)), key=lambda i: counts[i])
    if counts[order[0]] <= ALL_CANDIDATES_MAX:
        return "all", (order[0],)
    used = tuple(sorted(i for i in order if counts[i] < cap))  # ranges past the cap cost more than the check
    if len(used) > 1 and counts[order[0]] <= INTERSECTION_ALL_MAX:
        return "all", used  # several words together are rarely common: check the whole intersection
    if not used and len(counts) > 1:
        # Every word is common, but together they may be rare ("holdings group"): a walk would then read everything.
        everything = tuple(range(len(counts)))

        def together() -> Select:
            return select(func.count()).select_from(_candidates(everything, sector).limit(bindparam("cap")).subquery())

        both = await session.scalar(_cached(("together", everything, sector), together), params)
        if both is not None and both < cap:
            return ("all" if both <= ALL_CANDIDATES_MAX else "shortlist"), everything
    if not used:
        return "walk", ()
    return "shortlist", used
