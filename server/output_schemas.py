"""Output schemas that clients can check quickly, with the same meaning as pydantic's.

Clients re-validate every structured result against the tool's output schema (the Python SDK does it with
``jsonschema`` on every call), so the schema's shape is on the hot path of every tool call. Two rewrites, both
exact equivalences in JSON Schema 2020-12:

* ``{"anyOf": [S, {"type": "null"}]}`` where S has one ``type`` and only keywords that constrain values of that
  type (``properties``, ``format``, ``items`` ...) becomes S with ``"type": [T, "null"]``: a null passes the type
  check, and those keywords ignore values of other types (an ``enum`` gets null added). ``anyOf`` of plain types
  becomes one type list.
* ``{"$ref": "#/$defs/X"}`` is replaced by X itself unless X refers to itself (directly or not); ``$defs`` is
  dropped once nothing refers to it. A validator then never resolves a reference.

Together they took about a quarter off the client's validation of a cached ``validate_symbols`` result
(docs/BENCHMARKS.md).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["simplify_schema"]

# Keywords that say nothing about null: annotations, and assertions that apply to one JSON type only.
_ANNOTATIONS = {"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "$comment"}
_TYPE_ONLY = {
    "object": {
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
    },
    "array": {"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"},
    "string": {"format", "minLength", "maxLength", "pattern"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "format"},
    "boolean": set(),
}
_DEFS_PREFIX = "#/$defs/"


def simplify_schema(schema: Any) -> Any:
    """``schema`` with references inlined and nullable ``anyOf`` folded into type lists (see the module doc)."""
    if not isinstance(schema, dict):
        return _fold(schema)
    defs = schema.get("$defs", {})
    kept: dict[str, Any] = {}
    body = _inline({k: v for k, v in schema.items() if k != "$defs"}, defs, (), kept)
    out = _fold(body)
    if kept:
        out["$defs"] = {name: _fold(value) for name, value in kept.items()}
    return out


def _inline(node: Any, defs: dict[str, Any], stack: tuple[str, ...], kept: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, stack, kept) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX) and set(node) - {"$ref"} <= _ANNOTATIONS:
        name = ref[len(_DEFS_PREFIX) :]
        if name in defs and name not in stack:
            target = _inline(copy.deepcopy(defs[name]), defs, (*stack, name), kept)
            if isinstance(target, dict) and not _refers_to(target, stack + (name,)):
                # Annotations next to the reference (a field's description) win over the definition's own.
                return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        if name in defs and name not in kept:
            kept[name] = {}  # placeholder against endless recursion; filled below
            kept[name] = _inline(copy.deepcopy(defs[name]), defs, (name,), kept)
        return dict(node)
    return {key: _inline(value, defs, stack, kept) for key, value in node.items()}


def _refers_to(node: Any, names: tuple[str, ...]) -> bool:
    if isinstance(node, list):
        return any(_refers_to(item, names) for item in node)
    if not isinstance(node, dict):
        return False
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX) and ref[len(_DEFS_PREFIX) :] in names:
        return True
    return any(_refers_to(value, names) for value in node.values())


def _fold(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_fold(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _fold(value) for key, value in schema.items()}
    branches = out.get("anyOf")
    if not isinstance(branches, list) or not branches or not all(isinstance(b, dict) for b in branches):
        return out
    if all(set(b) == {"type"} for b in branches):
        types: list[str] = []
        for branch in branches:
            for t in branch["type"] if isinstance(branch["type"], list) else [branch["type"]]:
                if t not in types:
                    types.append(t)
        del out["anyOf"]
        out["type"] = types[0] if len(types) == 1 else types
        return out
    nulls = [b for b in branches if b == {"type": "null"}]
    others = [b for b in branches if b != {"type": "null"}]
    if len(branches) != 2 or len(nulls) != 1:
        return out
    other = others[0]
    kind = other.get("type")
    if not isinstance(kind, str) or kind not in _TYPE_ONLY:
        return out
    if not set(other) - {"type"} <= _TYPE_ONLY[kind] | _ANNOTATIONS | {"enum"}:
        return out
    rest = {k: v for k, v in out.items() if k != "anyOf"}
    if not set(rest) <= _ANNOTATIONS:
        return out
    # The field's own annotations (its title, description, default) win over the branch's.
    merged = {**other, **rest, "type": [kind, "null"]}
    if isinstance(other.get("enum"), list):
        merged["enum"] = [*other["enum"], None]  # an enum would otherwise reject the null the type now admits
    return merged
