"""Rebalance schedules: the calendar slots a dynamic universe is rebalanced in, once each.

A schedule cuts time (UTC) into periods: a day, an ISO week (Monday first), a calendar month or quarter. A
scheduled rebalance belongs to the period it runs in and is recorded under the period's key, which the store keeps
unique per universe (``rebalance_runs.period``): that, not any clock agreement between schedulers, is what makes a
run happen at most once per period. A universe is due from the start of the period after its last run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, cast, get_args

from services.errors import InvalidArgument

__all__ = ["SCHEDULES", "Schedule", "check_schedule", "next_period_start", "period_key", "period_start"]

Schedule = Literal["daily", "weekly", "monthly", "quarterly"]
SCHEDULES: tuple[str, ...] = get_args(Schedule)


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def period_start(schedule: Schedule, at: datetime) -> datetime:
    """The start (UTC midnight) of the period that holds ``at``."""
    day = _utc(at).replace(hour=0, minute=0, second=0, microsecond=0)
    if schedule == "daily":
        return day
    if schedule == "weekly":
        return day - timedelta(days=day.weekday())
    if schedule == "monthly":
        return day.replace(day=1)
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


def next_period_start(schedule: Schedule, at: datetime) -> datetime:
    """The start of the period after the one that holds ``at``: when a universe run at ``at`` is next due."""
    start = period_start(schedule, at)
    if schedule == "daily":
        return start + timedelta(days=1)
    if schedule == "weekly":
        return start + timedelta(days=7)
    months = 1 if schedule == "monthly" else 3
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)


def period_key(schedule: Schedule, at: datetime) -> str:
    """The period's name, as stored: 2026-12-02, 2026-W49, 2026-12, 2026-Q4."""
    start = period_start(schedule, at)
    if schedule == "daily":
        return start.date().isoformat()
    if schedule == "weekly":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if schedule == "monthly":
        return f"{start.year}-{start.month:02d}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def check_schedule(value: str | None) -> Schedule | None:
    if value is None:
        return None
    if value not in SCHEDULES:
        raise InvalidArgument(
            f"rebalance {str(value)[:30]!r} is not a schedule.",
            hint="Use one of daily, weekly, monthly, quarterly, or leave it out to rebalance only on request.",
            candidates=list(SCHEDULES),
        )
    return cast(Schedule, value)  # one of the Literal's values, checked just above
