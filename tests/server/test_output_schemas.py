"""server/output_schemas.py: the rewritten output schemas accept and reject exactly what pydantic's do."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from server.output_schemas import lean_input_schema, lean_output_schema, simplify_schema


class Inner(BaseModel):
    code: str
    hint: str | None = None
    level: Literal["low", "high"] | None = None


class Node(BaseModel):
    name: str
    children: list[Node] = Field(default_factory=list)


class Outer(BaseModel):
    ok: bool
    inner: Inner | None = Field(None, description="The outer description wins.")
    inners: list[Inner] = Field(default_factory=list)
    when: datetime | None = None
    day: date | None = None
    tags: dict[str, str | float | None] | None = None
    either: int | str = 0
    tree: Node | None = None


SCHEMA = Outer.model_json_schema()

INSTANCES: list[Any] = [
    {"ok": True},
    {"ok": True, "inner": None, "when": None, "day": None, "tags": None, "tree": None},
    {"ok": True, "inner": {"code": "x"}, "inners": [{"code": "y", "hint": None, "level": "low"}]},
    {"ok": True, "inner": {"code": "x", "level": None}},
    {"ok": True, "inner": {"code": "x", "level": "medium"}},
    {"ok": True, "inner": {"hint": "no code"}},
    {"ok": True, "inner": "not an object"},
    {"ok": True, "inner": 3},
    {"ok": True, "inners": [None]},
    {"ok": True, "inners": [{"code": 1}]},
    {"ok": True, "when": "2026-01-01T00:00:00Z", "day": "2026-01-01"},
    {"ok": True, "when": 5},
    {"ok": True, "tags": {"a": "b", "c": 1.5, "d": None}},
    {"ok": True, "tags": {"a": []}},
    {"ok": True, "tags": []},
    {"ok": True, "either": "s"},
    {"ok": True, "either": None},
    {"ok": True, "tree": {"name": "a", "children": [{"name": "b", "children": []}]}},
    {"ok": True, "tree": {"name": "a", "children": [{"children": []}]}},
    {"ok": True, "tree": {"name": "a", "children": [None]}},
    {"ok": "yes"},
    {},
    None,
]


def verdict(schema: dict[str, Any], instance: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(instance)


@pytest.mark.parametrize("index", range(len(INSTANCES)))
def test_the_simplified_schema_gives_the_same_verdict_as_pydantics(index):
    simplified = simplify_schema(copy.deepcopy(SCHEMA))
    instance = INSTANCES[index]
    assert verdict(simplified, instance) == verdict(SCHEMA, instance), instance


def test_references_are_inlined_and_nullable_anyof_folded():
    simplified = simplify_schema(copy.deepcopy(SCHEMA))
    inner = simplified["properties"]["inner"]
    assert inner["type"] == ["object", "null"] and "anyOf" not in inner
    assert inner["description"] == "The outer description wins." and "code" in inner["properties"]
    assert inner["properties"]["level"]["enum"] == ["low", "high", None]
    assert simplified["properties"]["when"] == {
        "format": "date-time",
        "type": ["string", "null"],
        "default": None,
        "title": "When",
    }
    assert simplified["properties"]["inners"]["items"]["properties"]["code"] == {"title": "Code", "type": "string"}


def test_a_self_referencing_definition_stays_a_reference():
    simplified = simplify_schema(copy.deepcopy(SCHEMA))
    assert set(simplified["$defs"]) == {"Node"}
    assert simplified["$defs"]["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}


def test_schemas_without_references_or_nullables_are_unchanged():
    plain = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert simplify_schema(copy.deepcopy(plain)) == plain


# lean_output_schema (issue 16): annotations dropped, repeated object shapes written once in $defs.


class Shape(BaseModel):
    symbol: str = Field(description="A long description that the lean schema drops: " + "x" * 60)
    status: Literal["valid", "invalid", "pending"]
    reason: str | None = None
    candidates: list[str] = Field(default_factory=list)
    checked_at: datetime | None = None
    source: str | None = None


class Repeats(BaseModel):
    first: Shape
    maybe: Shape | None = None
    many: list[Shape] = Field(default_factory=list)
    description: str | None = Field(None, description="A property named like an annotation keyword.")
    extra: dict[str, Any] = Field(default_factory=dict)


LEAN_CASES = [(SCHEMA, i) for i in INSTANCES] + [
    (Repeats.model_json_schema(), instance)
    for instance in (
        {"first": {"symbol": "A", "status": "valid"}},
        {"first": {"symbol": "A", "status": "valid"}, "maybe": None, "many": [{"symbol": "B", "status": "pending"}]},
        {"first": {"symbol": "A", "status": "valid"}, "maybe": {"symbol": "B", "status": "nope"}},
        {"first": {"symbol": "A", "status": "valid"}, "many": [None]},
        {"first": {"symbol": "A", "status": "valid"}, "maybe": 3},
        {"first": {"status": "valid"}},
        {"first": {"symbol": "A", "status": "valid"}, "description": 5},
        {"first": {"symbol": "A", "status": "valid"}, "description": None, "extra": {"k": [1]}},
        {"first": {"symbol": "A", "status": "valid", "checked_at": 7}},
        {},
    )
]


@pytest.mark.parametrize(("schema", "instance"), LEAN_CASES)
def test_the_lean_schema_gives_the_same_verdict_as_pydantics(schema, instance):
    lean = lean_output_schema(simplify_schema(copy.deepcopy(schema)))
    assert verdict(lean, instance) == verdict(schema, instance), instance


def test_the_lean_schema_says_each_shape_once_without_annotations():
    lean = lean_output_schema(simplify_schema(Repeats.model_json_schema()))
    text = json.dumps(lean)
    assert '"title"' not in text and "long description" not in text and '"default"' not in text
    assert set(lean["$defs"]) == {"Shape"} and text.count('"candidates"') == 1
    assert lean["properties"]["first"] == {"$ref": "#/$defs/Shape"}
    assert lean["properties"]["maybe"] == {"anyOf": [{"$ref": "#/$defs/Shape"}, {"type": "null"}]}
    assert lean["properties"]["many"]["items"] == {"$ref": "#/$defs/Shape"}
    assert lean["properties"]["description"] == {"type": ["string", "null"]}  # a property, not an annotation
    assert lean["properties"]["extra"] == {"type": "object"}  # additionalProperties: true is the default


def test_the_lean_input_schema_keeps_what_the_model_reads():
    class Args(BaseModel):
        universe_id: str = Field(description="Its id.")
        limit: int | None = Field(None, description="Page size.")
        mode: Literal["append", "replace"] = "append"

    lean = lean_input_schema(Args.model_json_schema())
    assert lean == {
        "type": "object",
        "properties": {
            "universe_id": {"description": "Its id.", "type": "string"},
            "limit": {"description": "Page size.", "type": ["integer", "null"]},
            "mode": {"default": "append", "enum": ["append", "replace"], "type": "string"},
        },
        "required": ["universe_id"],
    }
