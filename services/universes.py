"""Universe business logic: create, list, read (now or as of a date), rename, delete and membership (history and
turnover are read by services/history.py).

Every function takes the caller and filters by its owner id; none commits (the tool boundary does).
"""

from __future__ import annotations

# UniverseService.list (the tool's verb) shadows the builtin in the class body, so its signatures spell the type
# builtins.list.
import builtins
import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services import names, quotas
from services.backdated import DatedChange, DatedOutcome, apply_dated
from services.errors import Conflict, InvalidArgument, LimitExceeded, UniverseExists, UniverseNotFound
from services.pagination import decode_cursor, encode_cursor
from services.quotas import Quotas
from services.schedules import check_schedule
from services.schemas import (
    Caller,
    DynamicDefinition,
    MembershipReport,
    RebalanceFailure,
    RebalanceRunInfo,
    SymbolOutcome,
    UniverseDetail,
    UniverseMember,
    UniversePage,
    UniverseSummary,
)
from services.security_master import store as master
from services.symbols import normalise_symbols
from services.validation_api import SymbolCheck, SymbolValidator
from storage.db import run_write, utcnow
from storage.models import Asset, RebalanceRun, Universe
from storage.repositories import assets as asset_repo
from storage.repositories import rebalancing as rebalancing_repo
from storage.repositories import universes as repo
from storage.repositories.assets import AssetRef

__all__ = ["Limits", "UniverseService", "name_key", "parse_universe_id"]

NAME_MAX = 200
# What made a membership change, as its event's reason says (rebalances write their own, one per change).
REASON_CREATED = "created with the universe"
REASON_ADDED = "added by hand"
REASON_REMOVED = "removed by hand"
REASON_IMPORTED = "imported from CSV"
REASON_IMPORT_REPLACED = "not in the imported CSV (replace)"
DESCRIPTION_MAX = 2000


@dataclass(frozen=True, slots=True)
class Limits:
    max_symbols_per_call: int = 1000
    page_size_default: int = 50
    page_size_max: int = 200
    quotas: Quotas = Quotas()
    # Most symbols one background validation job takes, quoted in the hint of a too-large call; 0 when the jobs
    # toolset is not served, so the hint never points at a tool the caller cannot see.
    max_bulk_symbols: int = 10_000


def name_key(name: str) -> str:
    """The uniqueness key of a name: names that look alike share it (services/names.py: invisible characters
    dropped, NFKC, case folded, letters drawn like ASCII ones mapped to them, spaces collapsed)."""
    return names.fold(name)


def clean_name(name: str) -> str:
    cleaned = " ".join(names.strip_invisible(name).split())
    key = name_key(cleaned)
    if not key:
        raise InvalidArgument(
            "The universe name is empty (or only invisible characters).",
            hint="Give the universe a short descriptive name.",
        )
    if len(cleaned) > NAME_MAX:
        raise InvalidArgument(
            f"The universe name is {len(cleaned)} characters long; the limit is {NAME_MAX}.",
            hint="Use a shorter name and put the detail in description.",
        )
    if len(key) > NAME_MAX:  # NFKC and case folding can lengthen a name ("ß" -> "ss", "㍿" -> 4 characters)
        raise InvalidArgument(
            f"The universe name is {len(key)} characters long once normalised; the limit is {NAME_MAX}.",
            hint="Use a shorter name and put the detail in description.",
        )
    return cleaned


def clean_description(description: str | None) -> str | None:
    if description is None:
        return None
    if len(description) > DESCRIPTION_MAX:
        raise InvalidArgument(
            f"The description is {len(description)} characters long; the limit is {DESCRIPTION_MAX}.",
            hint="Shorten the description.",
        )
    return description.strip() or None


def parse_universe_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidArgument(
            f"{value[:60]!r} is not a universe id (ids are UUIDs such as 6f1c2a4e-...).",
            hint="Call list_universes to find the id of a universe by its name.",
            next_actions=[("list_universes", {}, "find the universe id by name")],
        ) from None


def _summary(universe: Universe, asset_count: int) -> UniverseSummary:
    return UniverseSummary(
        id=str(universe.id),
        name=universe.name,
        description=universe.description,
        kind=universe.kind,
        asset_count=asset_count,
        created_at=universe.created_at,
        updated_at=universe.updated_at,
    )


def definition_of(universe: Universe, last: RebalanceRun | None) -> DynamicDefinition | None:
    if universe.kind != "dynamic" or universe.rules is None:
        return None
    return DynamicDefinition(
        rules=universe.rules,
        rules_version=universe.rules_version,
        rebalance=check_schedule(universe.rebalance),
        include=list(universe.include_symbols or []),
        exclude=list(universe.exclude_symbols or []),
        next_rebalance_at=universe.next_rebalance_at,
        last_run=RebalanceRunInfo.model_validate(last) if last else None,
        last_failure=RebalanceFailure.model_validate(universe.rebalance_failure)
        if universe.rebalance_failure
        else None,
    )


def _member(asset: Asset, position: int | None, added_at: datetime | None) -> UniverseMember:
    return UniverseMember.model_validate(asset).model_copy(update={"position": position, "added_at": added_at})


def _not_found(uid: uuid.UUID) -> UniverseNotFound:
    return UniverseNotFound(
        f"No universe with id {uid} exists for you.",
        hint="The id may be mistyped or the universe deleted; list_universes shows the ones you have.",
        next_actions=[("list_universes", {}, "see your universes and their ids")],
    )


def _refuse_if_dynamic(universe: Universe, verb: str) -> None:
    """Manual membership changes on a dynamic universe would be undone by its next rebalance: a conflict."""
    if universe.kind != "dynamic":
        return
    raise Conflict(
        f"Universe {universe.name!r} is dynamic: its members follow its rules, so they cannot be {verb} by hand.",
        hint="Pin symbols in or out with update_universe(include=[...] / exclude=[...]) or change the rules, then "
        "rebalance_universe; or freeze it as a static list with update_universe(kind='static').",
        details={"kind": "dynamic"},
        next_actions=[
            ("update_universe", {"universe_id": str(universe.id)}, "change the rules or pins of the universe"),
            ("rebalance_universe", {"universe_id": str(universe.id), "dry_run": True}, "preview its next rebalance"),
        ],
    )


def _event_time(last: datetime | None) -> datetime:
    """The time of a new membership event: now, but never before the universe's latest event, so that the history
    replays in commit order even when replicas' clocks differ a little (the universe is locked meanwhile)."""
    now = utcnow()
    return max(now, last) if last is not None else now


class UniverseService:
    """Universe operations for one caller inside one unit of work."""

    def __init__(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        limits: Limits | None = None,
        validator: SymbolValidator | None = None,
    ) -> None:
        self.session = session
        self.caller = caller
        self.limits = limits or Limits()
        self.validator = validator

    # --- reading --------------------------------------------------------------------------------------------------
    async def _get(self, universe_id: str) -> Universe:
        uid = parse_universe_id(universe_id)
        universe = await repo.get_universe(self.session, self.caller.owner_id, uid)
        if universe is None:
            raise _not_found(uid)
        return universe

    def _page_size(self, limit: int | None) -> int:
        if limit is None:
            return self.limits.page_size_default
        if not 1 <= limit <= self.limits.page_size_max:
            raise InvalidArgument(f"limit must be between 1 and {self.limits.page_size_max}; got {limit}.")
        return limit

    async def list(
        self, *, limit: int | None = None, cursor: str | None = None, name_contains: str | None = None
    ) -> UniversePage:
        size = self._page_size(limit)
        after = tuple(decode_cursor("universes", cursor)) if cursor else None
        if after is not None and (len(after) != 2 or not all(isinstance(x, str) for x in after)):
            raise InvalidArgument("The cursor is not one this list returned.")
        filter_text = " ".join(name_contains.split()) if name_contains else None
        rows = await repo.list_universes(
            self.session,
            self.caller.owner_id,
            limit=size + 1,
            after=after,
            name_contains=filter_text,
        )
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = encode_cursor("universes", [rows[-1][0].name_key, str(rows[-1][0].id)]) if more else None
        return UniversePage(universes=[_summary(u, n) for u, n in rows], next_cursor=next_cursor)

    async def get(
        self,
        universe_id: str,
        *,
        include_assets: bool = True,
        limit: int | None = None,
        cursor: str | None = None,
        as_of: datetime | None = None,
    ) -> UniverseDetail:
        universe = await self._get(universe_id)
        size = self._page_size(limit)
        counts = await repo.count_members_by_status(self.session, universe.id)
        count = sum(counts.values())  # every member has an asset row (foreign key): one statement less
        detail = UniverseDetail(universe=_summary(universe, count), counts_by_status=counts)
        if as_of is not None:
            if as_of.tzinfo is None:
                raise InvalidArgument("as_of needs a time zone, e.g. 2026-01-31T00:00:00Z.")
            # Point-in-time: rebuilt from the membership events, so it reflects adds and removes since then.
            members = await repo.list_members_as_of(self.session, universe.id, as_of)
            offset = int(decode_cursor("members_as_of", cursor)) if cursor else 0
            page = members[offset : offset + size]
            detail.as_of = as_of
            detail.counts_by_status = {}
            for asset, _ in members:
                detail.counts_by_status[asset.validation_status] = (
                    detail.counts_by_status.get(asset.validation_status, 0) + 1
                )
            detail.universe = detail.universe.model_copy(update={"asset_count": len(members)})
            if include_assets:
                detail.assets = await master.annotate_members(
                    self.session, [a.id for a, _ in page], [_member(a, None, at) for a, at in page]
                )
                if offset + size < len(members):
                    detail.next_cursor = encode_cursor("members_as_of", offset + size)
            await self._define(universe, detail)
            return detail
        if include_assets:
            after = decode_cursor("members", cursor) if cursor else None
            if after is not None and not isinstance(after, int):
                raise InvalidArgument("The cursor is not one this list returned.")
            rows = await repo.list_members(self.session, universe.id, limit=size + 1, after_position=after)
            more = len(rows) > size
            rows = rows[:size]
            detail.assets = await master.annotate_members(
                self.session, [a.id for _, a in rows], [_member(a, m.position, m.added_at) for m, a in rows]
            )
            if more:
                detail.next_cursor = encode_cursor("members", rows[-1][0].position)
        detail.delisted_members = await master.delisted_members(self.session, universe.id)
        await self._define(universe, detail)
        return detail

    async def _define(self, universe: Universe, detail: UniverseDetail) -> None:
        if universe.kind == "dynamic":
            last = await self.session.run_sync(rebalancing_repo.latest_run, universe.id)
            detail.definition = definition_of(universe, last)

    # --- writing --------------------------------------------------------------------------------------------------
    def _check_size(self, symbols: Sequence[str]) -> None:
        cap = self.limits.max_symbols_per_call
        if len(symbols) > cap:
            bulk = self.limits.max_bulk_symbols
            hint = f"Send at most {cap} symbols per call"
            details: dict[str, Any] = {"limit": cap, "received": len(symbols)}
            if bulk:
                hint += (
                    ", or validate a large list first as a background job with start_bulk_validation "
                    f"(up to {bulk:,} symbols), then add it in chunks"
                )
                details["bulk_tool"] = "start_bulk_validation"
            # No next action carrying the list: the error must stay small and never echo a huge input back.
            raise LimitExceeded(
                f"{len(symbols)} symbols in one call; the limit is {cap}.", hint=hint + ".", details=details
            )

    async def _ensure_unique_name(self, key: str, *, except_id: uuid.UUID | None = None) -> None:
        existing = await repo.get_universe_by_name_key(self.session, self.caller.owner_id, key)
        if existing is not None and existing.id != except_id:
            raise UniverseExists(
                f"You already have a universe named {existing.name!r}.",
                hint="Pick another name, or change the existing universe (its id is in details).",
                details={"existing_id": str(existing.id), "existing_name": existing.name},
                next_actions=[("get_universe", {"universe_id": str(existing.id)}, "look at the existing universe")],
            )

    async def _flush_named(self, key: str, change: Callable[[], None], *, except_id: uuid.UUID | None = None) -> None:
        """Make ``change`` (adding or renaming a universe) and flush it; losing a same-name race is already_exists.

        The change is made inside a savepoint (begin_nested flushes what is pending before the SAVEPOINT, so the
        change must come after it): on PostgreSQL a failed statement would otherwise end the whole transaction,
        and with it the transaction-local owner id that row-level security reads, so the re-read would see nothing.
        """
        try:
            async with self.session.begin_nested():
                change()
                await self.session.flush()
        except IntegrityError:  # a concurrent create or rename to this name committed first
            await self._ensure_unique_name(key, except_id=except_id)
            raise

    async def _lock(self, universe_id: str | uuid.UUID) -> Universe:
        """The universe, locked for this transaction: changes to one universe's members happen one at a time."""
        uid = universe_id if isinstance(universe_id, uuid.UUID) else parse_universe_id(universe_id)
        universe = await repo.lock_universe(self.session, self.caller.owner_id, uid)
        if universe is None:  # deleted meanwhile (or never the caller's)
            raise _not_found(uid)
        return universe

    async def check_symbols(self, symbols: Sequence[str], *, validate: bool = True) -> dict[str, SymbolCheck]:
        """Provider verdicts for normalised symbols, asked before any lock is taken (providers may take seconds)."""
        if not validate or self.validator is None or not symbols:
            return {}
        return await self.validator.check_many(self.session, symbols, owner_id=self.caller.owner_id)

    async def create(
        self, name: str, *, description: str | None = None, symbols: Sequence[str] = (), validate: bool = True
    ) -> tuple[UniverseSummary, MembershipReport]:
        cleaned = clean_name(name)
        description = clean_description(description)
        self._check_size(symbols)
        normalised = normalise_symbols(symbols)
        key = name_key(cleaned)
        await self._ensure_unique_name(key)
        quotas.check_members(0, len(normalised), self.limits.quotas)
        checks = await self.check_symbols(normalised, validate=validate)
        assets = await self._assets_for(normalised, checks)
        await repo.lock_writes(self.session)
        await self._ensure_unique_name(key)  # again, now that no other writer can be between the check and insert
        await quotas.check_universes(self.session, self.caller.owner_id, self.limits.quotas)
        now = utcnow()
        universe = Universe(
            id=uuid.uuid4(),
            owner_id=self.caller.owner_id,
            name=cleaned,
            name_key=key,
            description=description,
            rules_version=0,
            created_at=now,
            updated_at=now,
        )
        await self._flush_named(key, lambda: self.session.add(universe))
        # The session holds the write lock already (lock_writes), so the add runs inside this same transaction.
        # The first members' events carry the creation time: turnover's default window starts after them.
        _, report = await run_write(
            self.session, self._add_unit, universe.id, normalised, checks, assets, REASON_CREATED, now
        )
        return _summary(universe, report.asset_count), report

    async def update(
        self, universe_id: str, *, name: str | None = None, description: str | None = None
    ) -> tuple[UniverseSummary, builtins.list[str]]:
        if name is None and description is None:
            raise InvalidArgument("Nothing to change: pass name and/or description.")
        universe = await self._lock(universe_id)
        values: dict[str, Any] = {}
        key = universe.name_key
        if name is not None:
            cleaned = clean_name(name)
            key = name_key(cleaned)
            await self._ensure_unique_name(key, except_id=universe.id)
            if cleaned != universe.name:
                values.update(name=cleaned, name_key=key)
        if description is not None:
            cleaned_description = clean_description(description)
            if cleaned_description != universe.description:
                values["description"] = cleaned_description
        changed: list[str] = [field for field in ("name", "description") if field in values]
        if values:
            values["updated_at"] = utcnow()

            def rename() -> None:
                for k, v in values.items():
                    setattr(universe, k, v)

            await self._flush_named(key, rename, except_id=universe.id)
        return _summary(universe, await repo.count_members(self.session, universe.id)), changed

    async def delete(self, universe_id: str) -> UniverseSummary:
        universe = await self._lock(universe_id)
        summary = _summary(universe, await repo.count_members(self.session, universe.id))
        await repo.delete_universe(self.session, self.caller.owner_id, universe.id)
        return summary

    async def add_assets(
        self,
        universe_id: str,
        symbols: Sequence[str],
        *,
        validate: bool = True,
        checks: dict[str, SymbolCheck] | None = None,
    ) -> tuple[UniverseSummary, MembershipReport]:
        """Add symbols; ``checks``: verdicts the caller already has (check_symbols), so none is asked under lock."""
        unlocked = await self._get(universe_id)
        _refuse_if_dynamic(unlocked, "added")
        self._check_size(symbols)
        if not symbols:
            raise InvalidArgument("symbols is empty.", hint='Pass one or more tickers, e.g. ["AAPL", "MSFT"].')
        normalised = normalise_symbols(symbols)
        # A first, unlocked look at the quota, so a full universe is refused before any provider is asked; the
        # write unit checks it exactly under the lock.
        await self._check_members_quota(unlocked, normalised)
        if checks is None:
            checks = await self.check_symbols(normalised, validate=validate)
        assets = await self._assets_for(normalised, checks)
        universe, report = await run_write(
            self.session, self._add_unit, unlocked.id, normalised, checks, assets, REASON_ADDED, None
        )
        return _summary(universe, report.asset_count), report

    def _add_unit(
        self,
        session: Session,
        universe_id: uuid.UUID,
        symbols: builtins.list[str],
        checks: dict[str, SymbolCheck],
        assets: dict[str, AssetRef],
        reason: str,
        at: datetime | None,
    ) -> tuple[Universe, MembershipReport]:
        """The locked part of an add (a storage.db.run_write unit)."""
        universe = self._locked(session, universe_id)
        _refuse_if_dynamic(universe, "added")  # it may have been given rules since the unlocked look
        report = self._add(session, universe, symbols, checks, assets, event_reason=reason, at=at)
        if report.counts.get("added"):
            universe.updated_at = utcnow()
            session.flush()
        return universe, report

    async def import_members(
        self,
        universe_id: str,
        symbols: Sequence[str],
        *,
        replace: bool = False,
        validate: bool = True,
        checks: dict[str, SymbolCheck] | None = None,
        dated: Sequence[DatedChange] = (),
    ) -> tuple[UniverseSummary, MembershipReport, builtins.list[str], dict[int, DatedOutcome]]:
        """Add any number of symbols (a file's), in chunks; ``replace``: first remove the members not among them;
        ``dated``: past changes to write at their dates first (services/backdated.py has the rule they keep).

        One locked write: a concurrent add cannot slip in between reading the members and removing them. Verdicts
        are asked before the lock (or passed in as ``checks``). Returns the universe, the report of the adds, the
        removed symbols in their old order and each dated line's outcome.
        """
        unlocked = await self._get(universe_id)
        _refuse_if_dynamic(unlocked, "imported")
        dated, notes = await self._as_traded_then(dated)
        normalised = normalise_symbols(symbols)
        every = normalise_symbols([*normalised, *(c.symbol for c in dated)])
        if checks is None:
            checks = await self.check_symbols(every, validate=validate)
        assets = await self._assets_for(every, checks)
        universe, report, removed, outcomes = await run_write(
            self.session, self._import_unit, unlocked.id, normalised, replace, checks, assets, list(dated)
        )
        for line, note in notes.items():
            if line in outcomes and outcomes[line].verdict != "invalid":
                outcomes[line] = dataclasses.replace(outcomes[line], reason=note)
        return _summary(universe, report.asset_count), report, removed, outcomes

    async def _as_traded_then(self, dated: Sequence[DatedChange]) -> tuple[builtins.list[DatedChange], dict[int, str]]:
        """Each dated change's security as it traded on its date: a ticker renamed since, or given to another
        security since, names the security that held it then (today's ticker), by the master's ticker history;
        with a note per line so changed."""
        held = await asset_repo.tickers_then(self.session, [(c.symbol, c.effective_at.date()) for c in dated])
        changes: builtins.list[DatedChange] = []
        notes: dict[int, str] = {}
        for change in dated:
            today = held.get((change.symbol, change.effective_at.date()))
            if today is None:
                changes.append(change)
                continue
            changes.append(dataclasses.replace(change, symbol=today))
            notes[change.line] = f"{change.symbol} on {change.effective_at.date()} was the ticker of today's {today}"
        return changes, notes

    def _import_unit(
        self,
        session: Session,
        universe_id: uuid.UUID,
        symbols: builtins.list[str],
        replace: bool,
        checks: dict[str, SymbolCheck],
        assets: dict[str, AssetRef],
        dated: builtins.list[DatedChange],
    ) -> tuple[Universe, MembershipReport, builtins.list[str], dict[int, DatedOutcome]]:
        universe = self._locked(session, universe_id)
        _refuse_if_dynamic(universe, "imported")
        removed: list[str] = []
        if replace:
            # Wanted: the undated symbols, and those whose latest dated change in the file adds them.
            latest: dict[str, DatedChange] = {}
            for change in dated:
                if change.symbol not in latest or change.effective_at > latest[change.symbol].effective_at:
                    latest[change.symbol] = change
            wanted = set(symbols) | {s for s, c in latest.items() if c.action == "added"}
            members = repo.member_symbols(session, universe.id)
            removed = [symbol for symbol, _ in members if symbol not in wanted]
            by_symbol = dict(members)
            self._remove(session, universe, [by_symbol[s] for s in removed], reason=REASON_IMPORT_REPLACED)
        outcomes = (
            apply_dated(session, universe, self.caller.owner_id, dated, checks, assets, self.limits.quotas)
            if dated
            else {}
        )
        results: list[SymbolOutcome] = []
        count = repo.membership_state(session, universe.id)[2] if not symbols else 0
        size = self.limits.max_symbols_per_call
        for start in range(0, len(symbols), size):
            report = self._add(
                session, universe, symbols[start : start + size], checks, assets, event_reason=REASON_IMPORTED
            )
            results.extend(report.results)
            count = report.asset_count
        backdated = any(o.verdict == "backdated" for o in outcomes.values())
        if removed or backdated or any(r.outcome == "added" for r in results):
            universe.updated_at = utcnow()
            session.flush()
        return universe, MembershipReport.build(results, count), removed, outcomes

    async def _check_members_quota(self, universe: Universe, symbols: builtins.list[str]) -> None:
        """Refuse an add that would take the universe past its member quota, looking before the lock (so before
        any provider is asked): symbols not yet members all count as new, rejected ones too."""
        limit = self.limits.quotas.members_per_universe
        if not limit:
            return
        current = await repo.count_members(self.session, universe.id)
        new = len(symbols)
        if current + new > limit:  # near the limit: symbols already present do not count
            new -= len(await self.session.run_sync(repo.members_by_symbol, universe.id, symbols))
        quotas.check_members(current, new, self.limits.quotas, universe_id=str(universe.id))

    async def _assets_for(self, symbols: builtins.list[str], checks: dict[str, SymbolCheck]) -> dict[str, AssetRef]:
        """The asset of each symbol that is not rejected, created where missing (before any lock: creating an asset
        is safe to race, see asset_repo.create_assets, and keeps the locked part of an add short)."""
        existing = await asset_repo.asset_refs_by_symbols(self.session, symbols)
        missing = [
            s for s in symbols if s not in existing and checks.get(s, SymbolCheck.unknown(s)).status != "invalid"
        ]
        if missing:
            created = await quotas.create_assets(  # unconfirmed ones count against the hourly quota
                self.session,
                [{"symbol": s, "validation_status": checks[s].status if s in checks else "unknown"} for s in missing],
                owner_id=self.caller.owner_id,
                quotas=self.limits.quotas,
            )
            existing.update({a.symbol: AssetRef.of(a) for a in created})
        return existing

    def _locked(self, session: Session, universe_id: uuid.UUID) -> Universe:
        """The universe inside a write unit, locked; not_found when it was deleted meanwhile."""
        universe = repo.locked_universe(session, self.caller.owner_id, universe_id)
        if universe is None:
            raise _not_found(universe_id)
        return universe

    def _add(
        self,
        session: Session,
        universe: Universe,
        symbols: builtins.list[str],
        checks: dict[str, SymbolCheck],
        existing: dict[str, AssetRef],
        *,
        event_reason: str,
        at: datetime | None = None,
    ) -> MembershipReport:
        """Add inside a write unit: what is a member, the positions and the events are read and written by one
        writer at a time, and an event is written for each row inserted, nothing else."""
        # The next position, the latest event and the member count in one statement (one round trip on PostgreSQL).
        first, last, count = repo.membership_state(session, universe.id)
        if not symbols:
            return MembershipReport.build([], count)
        # An empty universe (a fresh one filled by its first add) has no member to look for.
        present = repo.member_asset_ids(session, universe.id, [a.id for a in existing.values()]) if count else set()
        outcome = SymbolOutcome  # (not model_construct: pydantic's is ~50x slower for a model with a default_factory)
        results: list[SymbolOutcome] = []
        to_add: list[uuid.UUID] = []
        for symbol in symbols:
            check = checks.get(symbol)
            if check is not None and check.status == "invalid":
                results.append(
                    outcome(
                        symbol=symbol,
                        outcome="rejected",
                        validation_status="invalid",
                        source=check.source,
                        reason=check.reason or "no such listed security",
                        candidates=list(check.candidates),
                    )
                )
                continue
            asset = existing[symbol]
            status = asset.validation_status
            source = check.source if check else asset.validation_source
            if asset.id in present:
                results.append(
                    outcome(symbol=symbol, outcome="already_present", validation_status=status, source=source)
                )
                continue
            present.add(asset.id)
            to_add.append(asset.id)
            reason = None
            if status == "unknown":
                reason = "added without validation"
            elif status == "pending":
                reason = (
                    check.reason
                    if check and check.reason
                    else "no provider could answer yet; re-checked in the background"
                )
            results.append(
                outcome(symbol=symbol, outcome="added", validation_status=status, source=source, reason=reason)
            )
        if not to_add:
            return MembershipReport.build(results, count)
        # Exact under the lock: the members now, and the rows this add really inserts.
        quotas.check_members(count, len(to_add), self.limits.quotas, universe_id=str(universe.id))
        now = at or _event_time(last)
        repo.add_members(
            session,
            universe_id=universe.id,
            owner_id=self.caller.owner_id,
            asset_ids=to_add,
            first_position=first,
            at=now,
        )
        # The members from ``first`` on are the rows just inserted (the lock keeps every other writer out).
        repo.record_added_events(
            session,
            universe_id=universe.id,
            owner_id=self.caller.owner_id,
            first_position=first,
            at=now,
            reason=event_reason,
        )
        return MembershipReport.build(results, count + len(to_add))

    def _remove(
        self, session: Session, universe: Universe, asset_ids: builtins.list[uuid.UUID], *, reason: str
    ) -> tuple[set[uuid.UUID], int]:
        """Delete members inside a write unit; events only for the rows actually deleted. Returns the deleted ids
        and the member count after."""
        _, last, count = repo.membership_state(session, universe.id)
        removed = repo.remove_members(session, universe.id, asset_ids)
        if removed:
            now = _event_time(last)
            repo.record_events(
                session,
                universe_id=universe.id,
                owner_id=self.caller.owner_id,
                asset_ids=removed,
                action="removed",
                at=now,
                reason=reason,
            )
        return set(removed), count - len(removed)

    async def remove_assets(self, universe_id: str, symbols: Sequence[str]) -> tuple[UniverseSummary, MembershipReport]:
        uid = parse_universe_id(universe_id)
        self._check_size(symbols)
        if not symbols:
            raise InvalidArgument("symbols is empty.", hint='Pass the tickers to remove, e.g. ["AAPL"].')
        # Nothing slow comes before the removal: the whole of it is one write unit.
        universe, report = await run_write(self.session, self._remove_unit, uid, normalise_symbols(symbols))
        return _summary(universe, report.asset_count), report

    def _remove_unit(
        self, session: Session, universe_id: uuid.UUID, symbols: builtins.list[str]
    ) -> tuple[Universe, MembershipReport]:
        universe = self._locked(session, universe_id)
        _refuse_if_dynamic(universe, "removed")
        members = repo.members_by_symbol(session, universe.id, symbols)
        removed, count = self._remove(
            session, universe, [members[s] for s in symbols if s in members], reason=REASON_REMOVED
        )
        results = [
            SymbolOutcome(symbol=s, outcome="removed" if members.get(s) in removed else "not_present") for s in symbols
        ]
        if removed:
            universe.updated_at = utcnow()
            session.flush()
        return universe, MembershipReport.build(results, count)
