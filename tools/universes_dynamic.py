"""Dynamic-universe tools (part of the `universes` toolset): ``rebalance_universe``, and how a rebalance's changes
are presented (also by ``create_universe`` with rules). The logic is services/rebalancing.py."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from services.schemas import RebalanceResult
from tools._deps import Deps, ToolDeps
from tools._reports import keep_report
from tools._results import Envelope, NextAction, ok
from tools._toolset import DESTRUCTIVE, ToolSpec

__all__ = ["TOOLS", "describe", "listed"]

LISTED_CHANGES = 50  # per side in an answer (about 120 bytes each); the counts are complete and the rest is kept


async def listed(deps: ToolDeps, result: RebalanceResult) -> RebalanceResult:
    """The result as an answer carries it: the first changes of each side, the rest in a report resource."""
    if len(result.additions) <= LISTED_CHANGES and len(result.removals) <= LISTED_CHANGES:
        return result
    uri = await keep_report(
        deps,
        "rebalance_universe",
        {
            "universe_id": result.universe.id,
            "run_id": result.run.id if result.run else None,
            "additions": [c.model_dump(mode="json") for c in result.additions],
            "removals": [c.model_dump(mode="json") for c in result.removals],
        },
    )
    return result.model_copy(
        update={
            "additions": result.additions[:LISTED_CHANGES],
            "removals": result.removals[:LISTED_CHANGES],
            "truncated": True,
            "report_uri": uri,
        }
    )


def describe(result: RebalanceResult) -> str:
    """One line: what the rebalance does (or did), with the first changes and their reasons."""
    verb = "would add" if result.dry_run else "added"
    verb_out = "would remove" if result.dry_run else "removed"
    text = (
        f"{verb} {result.addition_count}, {verb_out} {result.removal_count}, kept {result.unchanged}: "
        f"{result.size_before} -> {result.size_after} members"
    )
    examples = [f"+{c.symbol} ({c.reason})" for c in result.additions[:2]] + [
        f"-{c.symbol} ({c.reason})" for c in result.removals[:2]
    ]
    if examples:
        text += "; e.g. " + ", ".join(examples)
    return text


async def rebalance_universe(
    deps: Deps,
    universe_id: Annotated[str, Field(description="Id of a dynamic universe (one created with rules).")],
    dry_run: Annotated[bool, Field(description="true (default): only report the changes; false: apply them.")] = True,
) -> Envelope[RebalanceResult]:
    """Bring a dynamic universe's members in line with its rules: who joins, who leaves, and why.

    Runs the universe's rules (the same as screen_assets) against the security master now, plus pinned-in symbols and
    minus pinned-out ones, and compares with the members. Each change has a reason ("market_cap 9.1e10 < 1e11",
    "not in S&P 500", "delisted on 2025-05-16", "pinned (include)"). dry_run=true (the default) changes nothing;
    dry_run=false applies all changes at once, records them in the history with the run id (get_universe_history),
    and records the run even when nothing changes. A static universe answers conflict.
    """
    async with deps.unit_of_work() as session:
        result = await deps.dynamic(session).rebalance(universe_id, dry_run=dry_run)
    answer = await listed(deps, result)
    uid = result.universe.id
    actions: list[NextAction] = []
    if dry_run and (result.addition_count or result.removal_count):
        actions.append(
            NextAction(
                tool="rebalance_universe",
                arguments={"universe_id": uid, "dry_run": False},
                reason="apply these changes",
            )
        )
    if not dry_run or result.concurrent:
        actions.append(
            NextAction(
                tool="get_universe_history",
                arguments={"universe_id": uid},
                reason="see the changes in the universe's history",
            )
        )
    if result.size_after == 0:
        actions.append(
            NextAction(
                tool="update_universe",
                arguments={"universe_id": uid},
                reason="the rules select nothing: loosen them (screen_assets previews a rule)",
            )
        )
    head = "Dry run" if dry_run else ("Already rebalanced" if result.concurrent else "Rebalanced")
    message = f"{head} {result.universe.name!r}: {describe(result)}."
    if result.warnings:
        message += " " + " ".join(result.warnings)
    return ok(answer, message, next_actions=actions, asset_count=result.universe.asset_count)


TOOLS = [
    ToolSpec(
        rebalance_universe,
        "Rebalance a dynamic universe",
        # Applying removes members; applying again changes nothing more; a dry run, the default, changes nothing.
        DESTRUCTIVE,
        scope="write",
    ),
]
