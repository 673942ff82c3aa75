"""Bulk outcomes kept whole for a while, as the resource ``reports://{report_id}``.

A bulk tool call (an import, adding or removing up to 1,000 symbols) answers with counts and the first rows that
need attention (tools/_results.py); when it had more rows than it lists, the whole per-row report is kept in the
cache (Redis in the distributed mode, so any replica can serve it) under the caller's owner id, and its URI is in
the answer. Reading it is owner-checked like any other resource; it expires after REPORT_TTL_S.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pydantic_core

from services.errors import NotFound
from tools._deps import AppContext, ToolDeps, resolve_caller
from tools._toolset import ResourceSpec

__all__ = ["REPORT_RESOURCE", "REPORT_TTL_S", "keep_report"]

logger = logging.getLogger(__name__)

REPORT_TTL_S = 3_600  # long enough to page through after the call; a report is a by-product, not a record
_PREFIX = "report:"


def _key(owner_id: Any, report_id: str) -> str:
    return f"{_PREFIX}{owner_id}:{report_id}"


async def keep_report(deps: ToolDeps, kind: str, body: dict[str, Any]) -> str | None:
    """Keep ``body`` (JSON-ready values and pydantic models, written as their JSON) for the caller; its resource
    URI, or None when the cache refused it."""
    report_id = uuid.uuid4().hex
    # pydantic-core writes the whole body in one pass (compact, UTF-8 as is): 1,000 SymbolOutcome rows took ~7 ms
    # as model_dump each and json.dumps, ~1.7 ms so.
    text = pydantic_core.to_json({"kind": kind, **body}).decode()
    try:
        await deps.state.cache.set(_key(deps.caller.owner_id, report_id), text, REPORT_TTL_S)
    except Exception:  # a report is a convenience: the call it follows has succeeded and says so
        logger.warning("bulk report not kept", exc_info=True)
        return None
    return f"reports://{report_id}"


async def report_resource(report_id: str, ctx: AppContext) -> str:
    state = ctx.request_context.lifespan_context
    caller = resolve_caller(state)
    text = None
    if report_id.isalnum() and len(report_id) <= 64:
        text = await state.cache.get(_key(caller.owner_id, report_id))
    if text is None:  # unknown, expired or someone else's: the same answer, so ids cannot be probed
        raise NotFound(f"No report {report_id[:64]!r}: reports are kept {REPORT_TTL_S // 60} minutes after the call.")
    return text


REPORT_RESOURCE = ResourceSpec(
    "reports://{report_id}",
    report_resource,
    title="Bulk report",
    description="The full per-row report of an import or a bulk add/remove whose answer listed only its first "
    f"rows (counts, then every row). Kept {REPORT_TTL_S // 60} minutes.",
)
