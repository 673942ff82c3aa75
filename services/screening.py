"""screen_assets: a rule tree over the security master, checked here and compiled to one SQL statement
(storage/repositories/screening.py).

The tree (DESIGN §12, the same one dynamic universes will keep)::

    {"all": [rule, ...]} | {"any": [rule, ...]} | {"not": rule} | {"field": F, "op": OP, "value": V}

Everything a caller can get wrong is refused here with ``invalid_argument`` naming the place in the tree
(``rules.all[2].value``) and, where it helps, candidates: unknown fields, ops a field does not take, values of the
wrong type, NaN/Infinity/negative numbers, reversed ``between`` bounds, and vocabulary values (sector, industry,
country, exchange, asset type, index, listing status) the store does not hold. Values are normalised on the way
(``"technology"`` → ``"Information Technology"``, ``"nasdaq"`` → ``"NASDAQ"``, tickers upper-cased), and the
normalised tree is what the caller gets back, so it can be kept and sent again as it stands.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from providers.sectors import GICS_SECTORS, to_gics_sector
from services.errors import InvalidArgument
from services.pagination import decode_cursor, encode_cursor, invalid_cursor
from services.schemas import AssetHit, ScreenPage
from services.symbols import normalise_symbol
from storage.repositories import listings as listings_repo
from storage.repositories import screening as repo
from storage.repositories.screening import AllOf, AnyOf, Condition, Not, Rule, SortKey

__all__ = [
    "FIELDS",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_IN_VALUES",
    "MAX_TOTAL",
    "OPS",
    "SORT_KEYS",
    "ScreeningService",
    "check_filters",
    "compiled",
    "complete",
    "industries_matching",
    "parse_rules",
]

MAX_DEPTH = 8  # all/any/not levels above a condition
MAX_CONDITIONS = 50
MAX_IN_VALUES = 500
MAX_OFFSET = 10_000  # deeper than any agent pages; a narrower rule is the answer
MAX_TEXT = 200  # longest text value
# A screen counts its matches up to this many and then says "more than" (ScreenPage.total_capped): an exact count
# of a broad rule reads every match, which no page needs (docs/BENCHMARKS.md, scenario 8).
MAX_TOTAL = 1_000

_TEXT_OPS = ("eq", "ne", "in", "not_in", "contains")
_VOCAB_OPS = ("eq", "ne", "in", "not_in")
_NUMBER_OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: str  # text | vocabulary | number | year
    ops: tuple[str, ...]
    about: str


FIELDS: dict[str, FieldSpec] = {
    "symbol": FieldSpec("text", _TEXT_OPS, "the current ticker (BRK.B; any spelling is normalised)"),
    "name": FieldSpec("text", _TEXT_OPS, "the security's name, compared case-blind"),
    "asset_type": FieldSpec("vocabulary", _VOCAB_OPS, "stock, etf, adr, fund, preferred, unit, warrant, …"),
    "exchange": FieldSpec("vocabulary", _VOCAB_OPS + ("contains",), "NASDAQ, NYSE, NYSE Arca, NYSE American, …"),
    "sector": FieldSpec("vocabulary", _VOCAB_OPS, "one of the 11 GICS sectors (list_sectors)"),
    "industry": FieldSpec("vocabulary", _VOCAB_OPS + ("contains",), "the listing source's industry words"),
    "country": FieldSpec("vocabulary", _VOCAB_OPS + ("contains",), "the issuer's country, e.g. United States"),
    "market_cap": FieldSpec("number", _NUMBER_OPS, "in US dollars, e.g. 1e10 for ten billion"),
    "ipo_year": FieldSpec("year", _NUMBER_OPS, "the year of the first listing"),
    "listing_status": FieldSpec("vocabulary", ("eq", "ne", "in", "not_in"), "listed or delisted"),
    "index": FieldSpec("vocabulary", ("eq", "ne", "in", "not_in"), "an index the security is a member of"),
}
OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains")
SORT_KEYS: tuple[SortKey, ...] = get_args(SortKey)
_STATIC_VOCABULARY = {"sector": tuple(GICS_SECTORS), "listing_status": ("listed", "delisted")}
# The vocabulary of a field changes only when listings are loaded or synced: read from the store at most this often.
_VOCABULARY_TTL_S = 300.0


def _problem(
    path: str, message: str, *, candidates: list[str] | None = None, hint: str | None = None
) -> InvalidArgument:
    return InvalidArgument(
        f"{path}: {message}",
        hint=hint
        or 'A rule is {"all": [...]}, {"any": [...]}, {"not": rule} or {"field": F, "op": OP, "value": V}; '
        "list_sectors shows sector and industry names.",
        details={"path": path},
        candidates=candidates or [],
    )


def _close(word: str, choices: list[str] | tuple[str, ...], n: int = 5) -> list[str]:
    folded = {c.casefold(): c for c in choices}
    found = difflib.get_close_matches(word.casefold(), list(folded), n=n, cutoff=0.5)
    inside = [c for f, c in folded.items() if word.casefold() in f and c not in found] if len(word) >= 3 else []
    return ([folded[f] for f in found] + inside)[:n]


class _Parser:
    """One pass over the raw tree: shape, bounds and types. Vocabulary values are checked afterwards, in one batch."""

    def __init__(self) -> None:
        self.conditions = 0
        self.vocabulary: list[tuple[str, str, Any]] = []  # (path, field, raw value) to resolve
        self.contains: list[tuple[str, str, str]] = []  # (path, field, text) of contains on a vocabulary field

    def rule(self, raw: Any, path: str, depth: int) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise _problem(path, f"expected an object, got {type(raw).__name__}.")
        keys = set(raw)
        for group in ("all", "any"):
            if group in keys:
                if keys != {group}:
                    raise _problem(path, f"a {group!r} rule holds only {group!r}; found {sorted(keys)[:5]}.")
                items = raw[group]
                if not isinstance(items, list) or not items:
                    raise _problem(f"{path}.{group}", "expected a non-empty list of rules.")
                if depth >= MAX_DEPTH:
                    raise _problem(path, f"rules nest at most {MAX_DEPTH} levels deep.")
                return {group: [self.rule(r, f"{path}.{group}[{i}]", depth + 1) for i, r in enumerate(items)]}
        if "not" in keys:
            if keys != {"not"}:
                raise _problem(path, f"a 'not' rule holds only 'not'; found {sorted(keys)[:5]}.")
            if depth >= MAX_DEPTH:
                raise _problem(path, f"rules nest at most {MAX_DEPTH} levels deep.")
            return {"not": self.rule(raw["not"], f"{path}.not", depth + 1)}
        if "field" in keys or "op" in keys:
            return self.condition(raw, path)
        raise _problem(
            path,
            f"not a rule: keys {sorted(str(k) for k in keys)[:5]}.",
            candidates=_close(str(next(iter(keys), "")), ["all", "any", "not", "field"]) if keys else [],
        )

    def condition(self, raw: Mapping[str, Any], path: str) -> dict[str, Any]:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise _problem(path, f"at most {MAX_CONDITIONS} conditions per screen.")
        extra = set(raw) - {"field", "op", "value"}
        if extra:
            raise _problem(path, f"unknown keys {sorted(str(k) for k in extra)[:5]}; a condition has field, op, value.")
        field, op = raw.get("field"), raw.get("op")
        if not isinstance(field, str) or field not in FIELDS:
            shown = field[:40] if isinstance(field, str) else type(field).__name__
            raise _problem(
                f"{path}.field",
                f"unknown field {shown!r}.",
                candidates=_close(shown, list(FIELDS)) or list(FIELDS),
            )
        spec = FIELDS[field]
        if not isinstance(op, str) or op not in spec.ops:
            shown = op[:20] if isinstance(op, str) else type(op).__name__
            raise _problem(
                f"{path}.op",
                f"{field} takes the ops {', '.join(spec.ops)}; got {shown!r}.",
                candidates=_close(shown, list(spec.ops)) or list(spec.ops),
            )
        if "value" not in raw:
            raise _problem(f"{path}.value", "missing.")
        value = self.value(raw["value"], field, op, spec, f"{path}.value")
        return {"field": field, "op": op, "value": value}

    def value(self, raw: Any, field: str, op: str, spec: FieldSpec, path: str) -> Any:
        if op in ("in", "not_in"):
            if not isinstance(raw, list) or not raw:
                raise _problem(path, f"{op} takes a non-empty list of values.")
            if len(raw) > MAX_IN_VALUES:
                raise _problem(path, f"at most {MAX_IN_VALUES} values in one list; got {len(raw)}.")
            values = [self.scalar(v, field, op, spec, f"{path}[{i}]") for i, v in enumerate(raw)]
            return list(dict.fromkeys(values))  # duplicates say nothing more
        if op == "between":
            if not isinstance(raw, list) or len(raw) != 2:
                raise _problem(path, "between takes [low, high].")
            low, high = (self.scalar(v, field, op, spec, f"{path}[{i}]") for i, v in enumerate(raw))
            if low > high:
                raise _problem(path, f"between's bounds are reversed: {low} > {high}.")
            return [low, high]
        return self.scalar(raw, field, op, spec, path)

    def scalar(self, raw: Any, field: str, op: str, spec: FieldSpec, path: str) -> Any:
        if spec.kind in ("number", "year"):
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise _problem(path, f"{field} compares with numbers; got {type(raw).__name__}.")
            if not math.isfinite(raw) or raw < 0:
                raise _problem(path, f"{field} values are finite numbers ≥ 0.")
            if spec.kind == "year":
                if raw != int(raw) or not 1800 <= raw <= 2200:
                    raise _problem(path, "ipo_year values are whole years, e.g. 2019.")
                return int(raw)
            return float(raw)
        if not isinstance(raw, str) or not raw.strip():
            raise _problem(path, f"{field} compares with non-empty text; got {type(raw).__name__}.")
        text = " ".join(raw.split())
        if len(text) > MAX_TEXT or "\x00" in text:
            raise _problem(path, f"text values are at most {MAX_TEXT} characters, without control characters.")
        if op == "contains":
            if spec.kind == "vocabulary":
                self.contains.append((path, field, text))
            return text
        if field == "symbol":
            return normalise_symbol(text)
        if field == "name":
            return text.lower()  # the column side is lower(name)
        self.vocabulary.append((path, field, text))
        return text


class _Vocabulary:
    """The spellings each vocabulary field holds, per store, read at most every _VOCABULARY_TTL_S."""

    _cache: dict[tuple[str, str], tuple[float, list[str]]] = {}

    @classmethod
    async def values(cls, session: AsyncSession, field: str, *, fresh: bool = False) -> list[str]:
        """``fresh``: read the store again (a value the cached list lacks may have arrived since)."""
        if field in _STATIC_VOCABULARY:
            return list(_STATIC_VOCABULARY[field])
        key = (str(session.bind.url) if isinstance(session.bind, AsyncEngine) else "", field)
        hit = cls._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < _VOCABULARY_TTL_S and not fresh:
            return hit[1]
        values = await repo.distinct_values(session, field)
        cls._cache[key] = (now, values)
        return values


# Completion argument names -> what they complete: a vocabulary field, or the rule tree's own words.
COMPLETABLE = ("sector", "industry", "country", "exchange", "index", "asset_type", "listing_status", "field", "op")


async def complete(session: AsyncSession, name: str, typed: str, *, field: str | None = None) -> list[str]:
    """Values for a completion of argument ``name`` starting with ``typed`` (case-blind), then those containing it;
    ``op`` completes the ops of ``field`` when the context names one."""
    if name == "field":
        choices: list[str] = list(FIELDS)
    elif name == "op":
        choices = list(FIELDS[field].ops) if field in FIELDS else list(OPS)
    elif name in FIELDS and FIELDS[name].kind == "vocabulary":
        choices = await _Vocabulary.values(session, name)
    else:
        return []
    needle = typed.strip().casefold()
    starts = [c for c in choices if c.casefold().startswith(needle)]
    inside = [c for c in choices if needle and needle in c.casefold() and c not in starts]
    return starts + inside


# Per query words: the industry vocabulary it was matched against (the very list _Vocabulary holds) and the matches.
# Matching reads every industry the store holds (700 in the bench store, a millisecond), on every filtered search.
_INDUSTRY_MATCHES: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}


async def industries_matching(session: AsyncSession, words: list[str]) -> list[str]:
    """The stored industries carrying every word at a word start (case-blind): what a search's industry words
    match, so the store compares whole industry values instead of scanning every row's text."""
    known = await _Vocabulary.values(session, "industry")
    hit = _INDUSTRY_MATCHES.get(tuple(words))
    if hit is not None and hit[0] is known:
        return hit[1]
    patterns = [re.compile(r"(?:^| )" + re.escape(w)) for w in words]
    matches = [v for v in known if all(p.search(v.lower()) for p in patterns)]
    if len(_INDUSTRY_MATCHES) >= 1_000:
        _INDUSTRY_MATCHES.clear()
    _INDUSTRY_MATCHES[tuple(words)] = (known, matches)
    return matches


def _resolve(field: str, text: str, known: list[str]) -> str | None:
    folded = {v.casefold(): v for v in known}
    exact = folded.get(text.casefold())
    if exact is not None:
        return exact
    if field == "sector":
        return to_gics_sector(text)  # Technology, Healthcare, … (the aliases search_assets takes)
    return None


def _replace_values(tree: dict[str, Any], resolved: dict[str, str]) -> None:
    """Swap each vocabulary value for its stored spelling (``resolved`` maps the value's path to it)."""

    def walk(node: dict[str, Any], path: str) -> None:
        for group in ("all", "any"):
            if group in node:
                for i, child in enumerate(node[group]):
                    walk(child, f"{path}.{group}[{i}]")
                return
        if "not" in node:
            walk(node["not"], f"{path}.not")
            return
        value = node["value"]
        if isinstance(value, list):
            node["value"] = list(dict.fromkeys(resolved.get(f"{path}.value[{i}]", v) for i, v in enumerate(value)))
        else:
            node["value"] = resolved.get(f"{path}.value", value)

    walk(tree, "rules")


def compiled(node: dict[str, Any], expansions: dict[str, list[str]], path: str = "rules") -> Rule:
    for group, kind in (("all", AllOf), ("any", AnyOf)):
        if group in node:
            return kind(tuple(compiled(r, expansions, f"{path}.{group}[{i}]") for i, r in enumerate(node[group])))
    if "not" in node:
        return Not(compiled(node["not"], expansions, f"{path}.not"))
    expanded = expansions.get(f"{path}.value")
    if expanded is not None:
        return Condition(node["field"], "in", tuple(expanded))
    return Condition(node["field"], node["op"], node["value"])


def mentions(node: dict[str, Any], field: str) -> bool:
    if "all" in node or "any" in node:
        return any(mentions(r, field) for r in node.get("all", node.get("any", [])))
    if "not" in node:
        return mentions(node["not"], field)
    return node["field"] == field


async def parse_rules(session: AsyncSession, raw: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The checked, normalised rule tree and the expansions of its ``contains`` on vocabulary fields (by path), or
    invalid_argument naming the first problem."""
    if raw is None or raw == {}:
        raise _problem(
            "rules",
            "empty.",
            hint='Give at least one condition, e.g. {"field": "sector", "op": "eq", "value": "Energy"}.',
        )
    parser = _Parser()
    tree = parser.rule(raw, "rules", 0)
    resolved: dict[str, str] = {}
    for path, field, text in parser.vocabulary:
        known = await _Vocabulary.values(session, field)
        value = _resolve(field, text, known)
        if value is None and field not in _STATIC_VOCABULARY:
            known = await _Vocabulary.values(session, field, fresh=True)
            value = _resolve(field, text, known)
        if value is None:
            raise _problem(
                path,
                f"no {field.replace('_', ' ')} {text[:60]!r} in the security master.",
                candidates=_close(text, known) or (known[:20] if len(known) <= 20 else []),
                hint=f"{field}: {FIELDS[field].about}."
                + (" 'contains' matches part of a value." if "contains" in FIELDS[field].ops else ""),
            )
        resolved[path] = value
    expansions = await _expand_contains(session, parser.contains)
    _replace_values(tree, resolved)
    return tree, expansions


async def _expand_contains(session: AsyncSession, contains: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    """path -> the stored spellings that contain the text, for each ``contains`` on a vocabulary field.

    The store then compares whole values (``industry IN (...)``) instead of lower-casing and scanning every row's
    text; the rules keep ``contains``, so a later run also takes spellings that appear later. A text that no
    spelling contains is refused with the nearest ones: a screen that can only come back empty is a typo."""
    found: dict[str, list[str]] = {}
    for path, field, text in contains:
        needle = text.casefold()
        known = await _Vocabulary.values(session, field)
        matches = [v for v in known if needle in v.casefold()]
        if not matches:
            known = await _Vocabulary.values(session, field, fresh=True)
            matches = [v for v in known if needle in v.casefold()]
        if not matches:
            raise _problem(
                path.removesuffix(".value") + ".value",
                f"no {field.replace('_', ' ')} in the security master contains {text[:60]!r}.",
                candidates=_close(text, known),
                hint=f"{field}: {FIELDS[field].about}.",
            )
        found[path] = matches
    return found


async def check_filters(
    session: AsyncSession, filters: list[tuple[str, dict[str, Any]]]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The conditions of search filters (argument name, condition) as one checked ``all`` rule; a problem is
    reported under the argument's name (``country: no country 'Untied States' ...``), not a path in a rule tree."""
    try:
        return await parse_rules(session, {"all": [condition for _, condition in filters]})
    except InvalidArgument as error:
        path = str(error.details.get("path", ""))
        found = re.match(r"rules\.all\[(\d+)\]", path)
        if found is None:
            raise
        argument = filters[int(found.group(1))][0]
        message = error.message.split(": ", 1)[-1]
        raise InvalidArgument(
            f"{argument}: {message}",
            hint=error.hint,
            details={**error.details, "path": argument},
        ) from None


def _digest(tree: dict[str, Any], sort_by: str) -> str:
    text = json.dumps([tree, sort_by], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ScreeningService:
    """Screens for one caller (``viewer``: another owner's unconfirmed assets are never in its results)."""

    def __init__(self, session: AsyncSession, *, page_size_max: int = 200, viewer: uuid.UUID | None = None) -> None:
        self.session = session
        self.page_size_max = page_size_max
        self.viewer = viewer

    async def screen(
        self, rules: Any, *, sort_by: str = "market_cap", limit: int = 50, cursor: str | None = None
    ) -> ScreenPage:
        if sort_by not in SORT_KEYS:
            raise InvalidArgument(
                f"sort_by {str(sort_by)[:30]!r} is not one of {', '.join(SORT_KEYS)}.",
                candidates=_close(str(sort_by), list(SORT_KEYS)) or list(SORT_KEYS),
            )
        if not 1 <= limit <= self.page_size_max:
            raise InvalidArgument(f"limit must be between 1 and {self.page_size_max}; got {limit}.")
        tree, expansions = await parse_rules(self.session, rules)
        digest = _digest(tree, sort_by)
        offset = 0
        if cursor:
            position = decode_cursor("screen", cursor)
            if not isinstance(position, dict) or position.get("q") != digest:
                raise invalid_cursor()
            at = position.get("o")
            if type(at) is not int or not 0 <= at <= MAX_OFFSET:
                raise invalid_cursor()
            offset = at
        # Delisted securities only when the rules ask about listing_status at all.
        listed_only = not mentions(tree, "listing_status")
        counted, rows = await repo.screen(
            self.session,
            compiled(tree, expansions),
            sort_by=sort_by,  # checked against SORT_KEYS above, which narrows it to a SortKey
            offset=offset,
            limit=limit + 1,  # one more than the page: whether another page follows, whatever the count says
            count_cap=MAX_TOTAL,
            listed_only=listed_only,
            viewer=self.viewer,
        )
        assets = rows[:limit]
        end = offset + len(assets)
        more = len(rows) > limit and end < MAX_OFFSET
        as_of: date | None = await listings_repo.newest_ok_as_of(self.session)
        return ScreenPage(
            total=min(counted, MAX_TOTAL),
            total_capped=counted > MAX_TOTAL,
            assets=[AssetHit.model_validate(a) for a in assets],
            rules=tree,
            sort_by=sort_by,
            data_as_of=as_of,
            next_cursor=encode_cursor("screen", {"o": end, "q": digest}) if more else None,
        )
