"""Why a security is in or out of a dynamic universe, in words: "market_cap 9.1e10 < 1e11", "no longer in S&P 500".

The store decides who matches (the rules compile to one SQL statement); this module only explains a decision
already made, for the few securities a rebalance adds or removes, by reading the same rule tree against their
facts (storage/repositories/rebalancing.py asset_facts). It mirrors the SQL's semantics: an unknown value fails
every condition except ``ne`` and ``not_in``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from storage.repositories.screening import AllOf, AnyOf, Condition, Not, Rule

__all__ = ["explain", "number"]

REASON_MAX = 300
_NEGATED = {"gt": "<=", "gte": "<", "lt": ">=", "lte": ">"}
_SYMBOL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "ne": "!="}
_CASE_BLIND = {"name", "symbol"}


def number(value: Any) -> str:
    """A figure as a person writes it in a rule: 9.1e10, 2019, 0.5."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    text = f"{value:.3g}"
    return text.replace("e+", "e").replace("e0", "e").replace("e-0", "e-")


def _shown(values: Any) -> str:
    items = list(values) if isinstance(values, list | tuple | set) else [values]
    if len(items) > 3:
        return ", ".join(number(v) for v in items[:3]) + f" … ({len(items)} values)"
    return ", ".join(number(v) for v in items)


def _holds(c: Condition, value: Any) -> bool:
    if c.field == "index":
        names = set(c.value) if c.op in ("in", "not_in") else {c.value}
        inside = bool(names & value)
        return not inside if c.op in ("ne", "not_in") else inside
    if value is None:
        return c.op in ("ne", "not_in")
    if c.field in _CASE_BLIND and isinstance(value, str):
        value = value.lower()
        target: Any = [str(v).lower() for v in c.value] if isinstance(c.value, list | tuple) else str(c.value).lower()
    else:
        target = c.value
    if c.op == "contains":
        return str(target).lower() in str(value).lower()
    if c.op == "eq":
        return bool(value == target)
    if c.op == "ne":
        return bool(value != target)
    if c.op == "in":
        return value in target
    if c.op == "not_in":
        return value not in target
    if c.op == "between":
        low, high = target
        return bool(low <= value <= high)
    return bool({"gt": value > target, "gte": value >= target, "lt": value < target, "lte": value <= target}[c.op])


def _say(c: Condition, value: Any, held: bool) -> str:
    """The condition's verdict on one value, as a short clause."""
    field = c.field
    if field == "index":
        names = list(c.value) if c.op in ("in", "not_in") else [c.value]
        inside = sorted(set(names) & value)
        if c.op in ("eq", "in"):
            return f"in {', '.join(inside)}" if held else f"not in {_shown(names)}"
        return f"not in {_shown(names)}" if held else f"in {', '.join(inside)}"
    if value is None:
        return f"{field} unknown"
    shown = number(value)
    if c.op in _NEGATED:
        return f"{field} {shown} {_SYMBOL[c.op] if held else _NEGATED[c.op]} {number(c.value)}"
    if c.op == "between":
        low, high = c.value
        return f"{field} {shown} {'within' if held else 'outside'} {number(low)}..{number(high)}"
    if c.op == "eq":
        return f"{field} {shown}" if held else f"{field} {shown}, not {number(c.value)}"
    if c.op == "ne":
        return f"{field} {shown}"
    if c.op == "in":
        return f"{field} {shown}" if held else f"{field} {shown} not in {_shown(c.value)}"
    if c.op == "not_in":
        return f"{field} {shown}" if held else f"{field} {shown} is excluded"
    return f"{field} {shown!r} {'contains' if held else 'does not contain'} {c.value!r}"


def _evaluate(rule: Rule, facts: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """Whether the rule holds, and the clauses that make it so (when it holds) or break it (when it does not)."""
    if isinstance(rule, Condition):
        value = facts.get(rule.field)
        held = _holds(rule, value)
        return held, [_say(rule, value, held)]
    if isinstance(rule, Not):
        held, why = _evaluate(rule.rule, facts)
        return not held, why
    results = [_evaluate(r, facts) for r in rule.rules]
    if isinstance(rule, AllOf):
        failing = [why for held, why in results if not held]
        if failing:
            return False, [clause for why in failing for clause in why]
        return True, [clause for _, why in results for clause in why]
    assert isinstance(rule, AnyOf)
    passing = [why for held, why in results if held]
    if passing:
        return True, passing[0]
    clauses = [clause for _, why in results for clause in why]
    return False, ["none of: " + "; ".join(clauses)] if len(clauses) > 1 else clauses


def explain(rule: Rule, facts: Mapping[str, Any]) -> tuple[bool, str]:
    """(whether ``rule`` holds for the security, why), the why at most REASON_MAX characters."""
    held, clauses = _evaluate(rule, facts)
    text = "; ".join(dict.fromkeys(clauses))
    if len(text) > REASON_MAX:
        text = text[: REASON_MAX - 1] + "…"
    return held, text
