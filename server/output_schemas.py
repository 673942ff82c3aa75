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

``lean_output_schema`` then drops what validates nothing and only weighs on ``tools/list`` (issue 16): titles,
defaults, descriptions and formats (annotations), and ``additionalProperties: true`` (the default). Output schemas are read
by clients, not models: what a field means is said once, in the tool's description and the server instructions.
``lean_input_schema`` drops the generated titles of arguments and folds nullable ``anyOf``; descriptions and
defaults stay, since the model reads them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["lean_input_schema", "lean_output_schema", "simplify_schema"]

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


# ``format`` too: in JSON Schema 2020-12 it is an annotation unless a validator opts in to asserting it, and the
# clients' validators (the SDK's jsonschema call among them) do not; a date is still typed as a string.
_VALUE_ANNOTATIONS = ("title", "description", "default", "examples", "$comment", "format")


_SHARE_MIN_CHARS = 200  # a repeated shape smaller than this costs about as much as a $ref to it


def lean_output_schema(schema: Any) -> Any:
    """``schema`` (already simplified) without annotations and without ``additionalProperties: true``; an object
    shape that occurs more than once is written once, in ``$defs``, and referred to.

    Exactly equivalent for validation: annotations assert nothing, ``true`` is what an absent
    ``additionalProperties`` means, and a reference to a definition validates as the definition does.
    """
    lean = _strip(schema, _VALUE_ANNOTATIONS, drop_open_objects=True)
    if not isinstance(lean, dict) or "$defs" in lean:
        return lean
    names: dict[str, str] = {}
    _titles(schema, names)
    counts: dict[str, int] = {}
    _count_shapes(lean, counts, top=True)
    shared = {key: names.get(key, f"Shape{i}") for i, key in enumerate(k for k, n in counts.items() if n > 1)}
    if not shared:
        return lean
    out = _share(lean, shared, top=True)
    out["$defs"] = {name: json.loads(key) for key, name in shared.items()}
    return out


def _key(node: dict[str, Any]) -> str:
    return json.dumps(node, sort_keys=True, separators=(",", ":"))


def _titles(node: Any, names: dict[str, str]) -> None:
    """The model name of each object shape (keyed by its lean form), to name shared definitions readably."""
    if isinstance(node, list):
        for item in node:
            _titles(item, names)
    elif isinstance(node, dict):
        if node.get("type") in ("object", ["object", "null"]) and isinstance(node.get("title"), str):
            plain = {k: v for k, v in node.items() if k != "type"} | {"type": "object"}
            names.setdefault(_key(_strip(plain, _VALUE_ANNOTATIONS, drop_open_objects=True)), node["title"])
        for value in node.values():
            _titles(value, names)


def _object_shape(node: dict[str, Any]) -> dict[str, Any] | None:
    """The non-null object part of ``node`` when it is an object schema with properties (nullable or not)."""
    kind = node.get("type")
    if kind not in ("object", ["object", "null"]) or "properties" not in node:
        return None
    return {k: v for k, v in node.items() if k != "type"} | {"type": "object"}


def _count_shapes(node: Any, counts: dict[str, int], *, top: bool = False) -> None:
    if isinstance(node, list):
        for item in node:
            _count_shapes(item, counts)
    elif isinstance(node, dict):
        shape = None if top else _object_shape(node)
        if shape is not None and len(key := _key(shape)) >= _SHARE_MIN_CHARS:
            counts[key] = counts.get(key, 0) + 1
        for key_, value in node.items():
            if key_ in ("enum", "const", "required"):
                continue
            _count_shapes(value, counts)


def _share(node: Any, shared: dict[str, str], *, top: bool = False) -> Any:
    if isinstance(node, list):
        return [_share(item, shared) for item in node]
    if not isinstance(node, dict):
        return node
    shape = None if top else _object_shape(node)
    if shape is not None and (name := shared.get(_key(shape))) is not None:
        ref = {"$ref": f"{_DEFS_PREFIX}{name}"}
        return ref if node.get("type") == "object" else {"anyOf": [ref, {"type": "null"}]}
    return {k: v if k in ("enum", "const", "required") else _share(v, shared) for k, v in node.items()}


def lean_input_schema(schema: Any) -> Any:
    """An input schema without pydantic's generated titles and ``default: null`` (an argument left out is null
    anyway: it is not in ``required``), nullable ``anyOf`` folded into type lists.

    Descriptions and other defaults stay: they are what the model reads about each argument.
    """
    out = _fold(_strip(schema, ("title",), drop_open_objects=False))
    for prop in out.get("properties", {}).values() if isinstance(out, dict) else ():
        if isinstance(prop, dict) and "default" in prop and prop["default"] is None:
            del prop["default"]
    return out


def _strip(node: Any, drop: tuple[str, ...], *, drop_open_objects: bool) -> Any:
    if isinstance(node, list):
        return [_strip(item, drop, drop_open_objects=drop_open_objects) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
            # Keys here are names (a property may well be called "description"), values are schemas.
            out[key] = {name: _strip(sub, drop, drop_open_objects=drop_open_objects) for name, sub in value.items()}
        elif key in drop or (drop_open_objects and key == "additionalProperties" and value is True):
            continue
        elif key in ("enum", "const", "required"):  # values, not schemas
            out[key] = value
        else:
            out[key] = _strip(value, drop, drop_open_objects=drop_open_objects)
    return out
