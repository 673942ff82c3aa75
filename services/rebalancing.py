"""Dynamic universes (DESIGN §12): created from rules, redefined, frozen, and rebalanced with a reason per change.

A dynamic universe's members are what its rules select from the security master (the same rule tree and SQL as
``screen_assets``), plus the symbols pinned in, minus those pinned out. A rebalance compares that with the members:
a dry run reports the difference; applying it removes and adds members, writes one event per change (its reason,
the run id) and a ``rebalance_runs`` row, all in one write unit under the universe's lock, so it lands whole or not
at all and never interleaves with another change to the universe. The rules are run inside that unit: what is
compared is what is current when the change is made.

At most once per schedule slot: a scheduled run is recorded under its period's key, unique per universe; a second
scheduler, a retry or a restart finds the slot done and changes nothing. Two manual rebalances at once: the second
finds the first's run (made after it started) and returns it instead of running again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from services import quotas
from services import screening as screening_rules
from services.errors import Conflict, InvalidArgument, LimitExceeded, UniverseMCPError
from services.rule_explain import explain
from services.schedules import check_schedule, next_period_start
from services.schemas import (
    Caller,
    RebalanceChange,
    RebalanceResult,
    RebalanceRunInfo,
    UniverseSummary,
)
from services.symbols import normalise_symbols
from services.universes import (
    Limits,
    _event_time,
    _not_found,
    _summary,
    clean_description,
    clean_name,
    name_key,
    parse_universe_id,
)
from storage.db import run_write, utcnow
from storage.models import RebalanceRun, Universe
from storage.repositories import listings as listings_repo
from storage.repositories import rebalancing as repo
from storage.repositories import universes as universes_repo
from storage.repositories.screening import Rule

__all__ = ["DynamicUniverses", "Trigger"]

Trigger = Literal["create", "manual", "scheduled", "listings_sync"]
PINS_MAX = 500
REASON_PREFIX = "rebalance: "
RULES_RACE_ATTEMPTS = 3  # a rebalance whose rules change under it runs the new ones, up to this many times


class RulesChanged(Conflict):
    """The universe's definition changed between compiling its rules and taking its lock."""


@dataclass(frozen=True, slots=True)
class Rules:
    """A universe's rules, checked and compiled for the store."""

    tree: dict[str, Any]
    rule: Rule
    listed_only: bool  # delisted securities are in only when the rules ask about listing_status


@dataclass(slots=True)
class Plan:
    """The difference between the rules' result and the members, with a reason per change."""

    size_before: int
    additions: list[tuple[uuid.UUID, str, str | None, str]] = field(default_factory=list)  # id, symbol, name, why
    removals: list[tuple[uuid.UUID, str, str | None, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def size_after(self) -> int:
        return self.size_before + len(self.additions) - len(self.removals)


def _one_way(additions: int, removals: int, before: int, after: int) -> float | None:
    average = (before + after) / 2
    return round(min(additions, removals) / average, 6) if average else None


class DynamicUniverses:
    """Dynamic-universe operations for one caller inside one unit of work."""

    def __init__(self, session: AsyncSession, caller: Caller, *, limits: Limits | None = None) -> None:
        self.session = session
        self.caller = caller
        self.limits = limits or Limits()

    # --- rules and pins -------------------------------------------------------------------------------------------
    async def _rules(self, raw: Any, *, stored: bool = False) -> Rules:
        try:
            tree, expansions = await screening_rules.parse_rules(self.session, raw)
        except InvalidArgument as error:
            if not stored:
                raise
            # Rules that were valid when saved but name something the security master no longer holds.
            raise Conflict(
                f"The universe's rules no longer check against the security master: {error.message}",
                hint="Change the rules with update_universe (list_sectors shows the names in use).",
                details=error.details,
            ) from None
        return Rules(
            tree=tree,
            rule=screening_rules.compiled(tree, expansions),
            listed_only=not screening_rules.mentions(tree, "listing_status"),
        )

    async def _pins(self, name: str, symbols: Sequence[str] | None) -> list[str] | None:
        if symbols is None:
            return None
        if len(symbols) > PINS_MAX:
            raise LimitExceeded(f"{name} has {len(symbols)} symbols; at most {PINS_MAX} may be pinned.")
        pins = normalise_symbols(symbols)
        found = await self.session.run_sync(repo.pinned_assets, pins)
        unknown = [s for s in pins if s not in found]
        if unknown:
            raise InvalidArgument(
                f"{name}: {', '.join(unknown[:10])} {'is' if len(unknown) == 1 else 'are'} not in the security master.",
                hint="Pin symbols the server knows: search_assets finds them; validate_symbols checks a ticker.",
                details={"unknown": unknown[:50]},
                next_actions=[("validate_symbols", {"symbols": unknown[:20]}, "check the tickers")],
            )
        return pins

    # --- create, redefine, freeze ---------------------------------------------------------------------------------
    async def create(
        self,
        name: str,
        rules: Any,
        *,
        description: str | None = None,
        rebalance: str | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
    ) -> tuple[UniverseSummary, RebalanceResult]:
        """A dynamic universe whose first members are its rules' result (applied as run ``create``)."""
        cleaned = clean_name(name)
        description = clean_description(description)
        schedule = check_schedule(rebalance)
        compiled = await self._rules(rules)
        pins_in = await self._pins("include", include)
        pins_out = await self._pins("exclude", exclude)
        _check_pins_apart(pins_in, pins_out)
        key = name_key(cleaned)
        from services.universes import UniverseService  # one place for the name and quota checks

        names = UniverseService(self.session, self.caller, limits=self.limits)
        await names._ensure_unique_name(key)
        data_as_of = await listings_repo.newest_ok_as_of(self.session)
        await universes_repo.lock_writes(self.session)
        await names._ensure_unique_name(key)
        await quotas.check_universes(self.session, self.caller.owner_id, self.limits.quotas)
        now = utcnow()
        universe = Universe(
            id=uuid.uuid4(),
            owner_id=self.caller.owner_id,
            name=cleaned,
            name_key=key,
            description=description,
            kind="dynamic",
            rules=compiled.tree,
            rules_version=1,
            include_symbols=pins_in or None,
            exclude_symbols=pins_out or None,
            rebalance=schedule,
            next_rebalance_at=next_period_start(schedule, now) if schedule else None,
            created_at=now,
            updated_at=now,
        )
        await names._flush_named(key, lambda: self.session.add(universe))
        result = await run_write(self.session, self._create_unit, universe.id, compiled, data_as_of, now)
        return result.universe, result

    def _create_unit(
        self, session: Session, universe_id: uuid.UUID, compiled: Rules, data_as_of: date | None, now: datetime
    ) -> RebalanceResult:
        universe = self._locked(session, universe_id)
        repo.record_version(session, universe, change="created", at=now)
        return self._apply(session, universe, compiled, trigger="create", period=None, data_as_of=data_as_of, at=now)

    async def redefine(
        self,
        universe_id: str,
        *,
        rules: Any = None,
        rebalance: str | None = None,
        clear_rebalance: bool = False,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        freeze: bool = False,
    ) -> tuple[UniverseSummary, list[str]]:
        """Change rules, schedule or pins (each change bumps rules_version and is recorded), or freeze the universe
        as a static list (``freeze``). Giving rules to a static universe makes it dynamic; its members change at
        its next rebalance. Returns the universe and what changed."""
        uid = parse_universe_id(universe_id)
        if freeze and any(v is not None for v in (rules, rebalance, include, exclude)):
            raise InvalidArgument(
                'kind="static" freezes the universe as it is; it takes no rules, rebalance, include or exclude.',
                hint="Freeze in one call; give rules in another to make it dynamic again.",
            )
        schedule = check_schedule(rebalance)
        compiled = await self._rules(rules) if rules is not None else None
        pins_in = await self._pins("include", include)
        pins_out = await self._pins("exclude", exclude)
        universe = await universes_repo.lock_universe(self.session, self.caller.owner_id, uid)
        if universe is None:
            raise _not_found(uid)
        if freeze:
            if universe.kind == "static":
                return _summary(universe, await universes_repo.count_members(self.session, uid)), []
            values: dict[str, Any] = {
                "kind": "static",
                "rules": None,
                "include_symbols": None,
                "exclude_symbols": None,
                "rebalance": None,
                "next_rebalance_at": None,
            }
            changed = ["kind"]
        else:
            if universe.kind == "static" and compiled is None:
                if any(v is not None for v in (include, exclude)) or schedule or clear_rebalance:
                    raise Conflict(
                        f"Universe {universe.name!r} is static: pins and schedules belong to rules.",
                        hint="Give it rules with update_universe(rules=...) to make it dynamic.",
                        next_actions=[
                            (
                                "screen_assets",
                                {"rules": {"field": "sector", "op": "eq", "value": "Information Technology"}},
                                "try a rule first",
                            )
                        ],
                    )
            values = {}
            if compiled is not None and universe.kind != "dynamic":
                values.update(kind="dynamic", rules=compiled.tree)
            elif compiled is not None and compiled.tree != universe.rules:
                values["rules"] = compiled.tree
            if clear_rebalance and universe.rebalance is not None:
                values.update(rebalance=None, next_rebalance_at=None)
            elif schedule is not None and schedule != universe.rebalance:
                values.update(rebalance=schedule, next_rebalance_at=next_period_start(schedule, utcnow()))
            if pins_in is not None and pins_in != list(universe.include_symbols or []):
                values["include_symbols"] = pins_in or None
            if pins_out is not None and pins_out != list(universe.exclude_symbols or []):
                values["exclude_symbols"] = pins_out or None
            _check_pins_apart(
                values.get("include_symbols", universe.include_symbols),
                values.get("exclude_symbols", universe.exclude_symbols),
            )
            changed = [
                {"include_symbols": "include", "exclude_symbols": "exclude"}.get(k, k)
                for k in ("kind", "rules", "rebalance", "include_symbols", "exclude_symbols")
                if k in values
            ]
        if not values:
            return _summary(universe, await universes_repo.count_members(self.session, uid)), []
        now = utcnow()
        for k, v in values.items():
            setattr(universe, k, v)
        universe.rebalance_failure = None  # about the definition it replaces: the next rebalance runs this one
        universe.rules_version += 1
        universe.updated_at = now
        change = "frozen as a static list" if freeze else "changed " + ", ".join(changed)
        await self.session.run_sync(lambda s: repo.record_version(s, universe, change=change, at=now))
        await self.session.flush()
        return _summary(universe, await universes_repo.count_members(self.session, uid)), changed

    # --- rebalancing ----------------------------------------------------------------------------------------------
    async def rebalance(
        self,
        universe_id: str | uuid.UUID,
        *,
        dry_run: bool = True,
        trigger: Trigger = "manual",
        period: str | None = None,
        scheduled_at: datetime | None = None,
    ) -> RebalanceResult:
        """Compare the rules' result with the members (``dry_run``) or apply the difference. ``period``: the
        schedule slot a scheduled run is for (at most one run per slot); ``scheduled_at``: the scheduler's time,
        from which the next due time is reckoned (default now)."""
        started = utcnow()
        uid = universe_id if isinstance(universe_id, uuid.UUID) else parse_universe_id(universe_id)
        for attempt in range(RULES_RACE_ATTEMPTS):
            universe = await universes_repo.get_universe(self.session, self.caller.owner_id, uid)
            if universe is None:
                raise _not_found(uid)
            if universe.kind != "dynamic" or universe.rules is None:
                raise _static(universe)
            compiled = await self._rules(universe.rules, stored=True)
            data_as_of = await listings_repo.newest_ok_as_of(self.session)
            if dry_run:
                plan = await self.session.run_sync(self._plan, universe, compiled)
                return self._result(universe, plan, data_as_of=data_as_of, run=None)
            try:
                return await run_write(
                    self.session,
                    self._rebalance_unit,
                    uid,
                    universe.rules_version,
                    compiled,
                    trigger,
                    period,
                    data_as_of,
                    started,
                    scheduled_at,
                )
            except RulesChanged:
                if attempt + 1 == RULES_RACE_ATTEMPTS:
                    raise
                # The rules were compiled before the lock and changed meanwhile: read them again (not from this
                # session's identity map, which still holds the old row) and run the new ones.
                self.session.expire_all()
        raise AssertionError("unreachable")  # the loop returns or raises

    def _rebalance_unit(
        self,
        session: Session,
        universe_id: uuid.UUID,
        rules_version: int,
        compiled: Rules,
        trigger: Trigger,
        period: str | None,
        data_as_of: date | None,
        started: datetime,
        scheduled_at: datetime | None,
    ) -> RebalanceResult:
        universe = self._locked(session, universe_id)
        if universe.kind != "dynamic" or universe.rules is None:
            raise _static(universe)
        if universe.rules_version != rules_version:
            raise RulesChanged(
                f"The rules of universe {universe.name!r} kept changing while it was being rebalanced.",
                hint="Call rebalance_universe again: it runs the rules as they are then.",
                details={"retryable": True},
            )
        if period is not None and (done := repo.run_for_period(session, universe.id, period)) is not None:
            return self._done(session, universe, done, data_as_of, note=f"already rebalanced for {period}")
        if trigger == "manual":
            last = repo.latest_run(session, universe.id)
            if last is not None and last.started_at >= started and last.rules_version == universe.rules_version:
                return self._done(session, universe, last, data_as_of, note="rebalanced by a concurrent call")
        return self._apply(
            session,
            universe,
            compiled,
            trigger=trigger,
            period=period,
            data_as_of=data_as_of,
            scheduled_at=scheduled_at,
        )

    def _done(
        self, session: Session, universe: Universe, run: RebalanceRun, data_as_of: date | None, *, note: str
    ) -> RebalanceResult:
        """The answer when the run asked for was already made: that run, nothing changed now."""
        count = universes_repo.membership_state(session, universe.id)[2]
        result = self._result(universe, Plan(size_before=count), data_as_of=data_as_of, run=run)
        result.concurrent = True
        result.warnings.append(note)
        return result

    def _apply(
        self,
        session: Session,
        universe: Universe,
        compiled: Rules,
        *,
        trigger: Trigger,
        period: str | None,
        data_as_of: date | None,
        at: datetime | None = None,
        scheduled_at: datetime | None = None,
    ) -> RebalanceResult:
        plan = self._plan(session, universe, compiled)
        first, last, count = universes_repo.membership_state(session, universe.id)
        now = at or _event_time(last)
        run = RebalanceRun(
            id=uuid.uuid4(),
            universe_id=universe.id,
            owner_id=universe.owner_id,
            trigger=trigger,
            period=period,
            rules_version=universe.rules_version,
            data_as_of=data_as_of,
            started_at=now,
            size_before=count,
            size_after=count + len(plan.additions) - len(plan.removals),
            additions=len(plan.additions),
            removals=len(plan.removals),
            turnover=_one_way(len(plan.additions), len(plan.removals), count, plan.size_after),
        )
        repo.insert_run(session, run)  # first: the events refer to it
        removed = universes_repo.remove_members(session, universe.id, [r[0] for r in plan.removals])
        universes_repo.record_events(
            session,
            universe_id=universe.id,
            owner_id=universe.owner_id,
            asset_ids=removed,
            action="removed",
            at=now,
            reasons={r[0]: (REASON_PREFIX + r[3])[:300] for r in plan.removals},
            run_id=run.id,
        )
        added = [a[0] for a in plan.additions]
        universes_repo.add_members(
            session, universe_id=universe.id, owner_id=universe.owner_id, asset_ids=added, first_position=first, at=now
        )
        universes_repo.record_events(
            session,
            universe_id=universe.id,
            owner_id=universe.owner_id,
            asset_ids=added,
            action="added",
            at=now,
            reasons={a[0]: (REASON_PREFIX + a[3])[:300] for a in plan.additions},
            run_id=run.id,
        )
        if trigger in ("scheduled", "create") and universe.rebalance:
            schedule = check_schedule(universe.rebalance) or "daily"
            universe.next_rebalance_at = next_period_start(schedule, scheduled_at or now)
        if added or removed:
            universe.updated_at = now
        if universe.rebalance_failure is not None:  # a rebalance succeeded: the last failure is no longer news
            universe.rebalance_failure = None
            if not (added or removed):
                flag_modified(universe, "updated_at")  # written as it is: dropping the note changes no universe
        session.flush()
        return self._result(universe, plan, data_as_of=data_as_of, run=run)

    def _plan(self, session: Session, universe: Universe, compiled: Rules) -> Plan:
        """What the rules select now against the members: who comes, who goes, and why."""
        cap = self.limits.quotas.members_per_universe or 100_000
        selected = repo.target(
            session, compiled.rule, viewer=universe.owner_id, listed_only=compiled.listed_only, limit=cap + 1
        )
        pins_in = repo.pinned_assets(session, list(universe.include_symbols or []))
        pins_out = repo.pinned_assets(session, list(universe.exclude_symbols or []))
        out_ids = set(pins_out.values())
        wanted: dict[uuid.UUID, str] = {a: s for a, s in selected if a not in out_ids}
        for symbol, asset_id in pins_in.items():
            wanted.setdefault(asset_id, symbol)
        if len(wanted) > cap:
            raise LimitExceeded(
                f"The rules select more than {cap:,} securities, the most one universe may hold.",
                hint="Narrow the rules (a market-cap floor, a sector or an index), then try again.",
                details={"quota": "members_per_universe", "limit": cap},
                next_actions=[("screen_assets", {"rules": universe.rules}, "see what the rules select")],
            )
        members = {asset_id: symbol for symbol, asset_id in universes_repo.member_symbols(session, universe.id)}
        plan = Plan(size_before=len(members))
        coming = [a for a in wanted if a not in members]
        going = [a for a in members if a not in wanted]
        facts = repo.asset_facts(session, coming + going)
        pinned_in = set(pins_in.values())
        for asset_id in coming:
            fact = facts[asset_id]
            held, why = explain(compiled.rule, fact)
            if asset_id in pinned_in and not held:
                why = "pinned (include)"
            plan.additions.append((asset_id, fact["symbol"], fact["name"], why))
        for asset_id in going:
            fact = facts.get(asset_id, {"symbol": members[asset_id], "name": None})
            plan.removals.append(
                (asset_id, fact["symbol"], fact.get("name"), self._why_out(compiled, fact, out_ids, asset_id))
            )
        if not wanted:
            plan.warnings.append("The rules match no security: applying this rebalance empties the universe.")
        return plan

    @staticmethod
    def _why_out(compiled: Rules, fact: dict[str, Any], pinned_out: set[uuid.UUID], asset_id: uuid.UUID) -> str:
        if asset_id in pinned_out:
            return "pinned out (exclude)"
        if compiled.listed_only and fact.get("listing_status") == "delisted":
            on = fact.get("delisted_on")
            return f"delisted on {on.isoformat()}" if on else "delisted"
        if "market_cap" not in fact:  # no facts: the security left the store
            return "no longer in the security master"
        held, why = explain(compiled.rule, fact)
        if held:  # the rules hold, yet the store did not select it: not a listing the master vouches for
            return "no longer a known listing" if fact.get("validation_status") == "invalid" else "no longer selected"
        return why

    def _result(
        self, universe: Universe, plan: Plan, *, data_as_of: date | None, run: RebalanceRun | None
    ) -> RebalanceResult:
        added, removed = len(plan.additions), len(plan.removals)
        return RebalanceResult(
            universe=_summary(universe, plan.size_after if run is not None else plan.size_before),
            dry_run=run is None,
            run=RebalanceRunInfo.model_validate(run) if run else None,
            rules_version=universe.rules_version,
            data_as_of=data_as_of,
            size_before=plan.size_before,
            size_after=plan.size_after,
            additions=[RebalanceChange(symbol=s, name=n, reason=w) for _, s, n, w in plan.additions],
            removals=[RebalanceChange(symbol=s, name=n, reason=w) for _, s, n, w in plan.removals],
            addition_count=added,
            removal_count=removed,
            unchanged=plan.size_before - removed,
            one_way_turnover=_one_way(added, removed, plan.size_before, plan.size_after),
            warnings=list(plan.warnings),
        )

    def _locked(self, session: Session, universe_id: uuid.UUID) -> Universe:
        universe = universes_repo.locked_universe(session, self.caller.owner_id, universe_id)
        if universe is None:
            raise _not_found(universe_id)
        return universe


def _static(universe: Universe) -> UniverseMCPError:
    return Conflict(
        f"Universe {universe.name!r} is static: it has no rules to rebalance to.",
        hint="Change its members with add_assets_to_universe and remove_assets_from_universe, or give it rules "
        "with update_universe(rules=...) to make it dynamic.",
        next_actions=[("get_universe", {"universe_id": str(universe.id), "include_assets": False}, "see the universe")],
    )


def _check_pins_apart(include: Sequence[str] | None, exclude: Sequence[str] | None) -> None:
    both = sorted(set(include or ()) & set(exclude or ()))
    if both:
        raise InvalidArgument(
            f"{', '.join(both[:10])} cannot be pinned both in (include) and out (exclude).",
            hint="Keep each symbol in one of the two lists.",
        )
