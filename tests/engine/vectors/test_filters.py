"""The filter DSL (engine/vectors/filters.py): every operator the SDK's ``F`` builder emits, its
validation errors, and a property test against an independent brute-force evaluator."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from dakera.models import F
from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.vectors.filters import MatchAll, compile_filter
from dakera_server.errors import InvalidInput

RECORD = {
    "cat": "news",
    "n": 5,
    "x": 2.5,
    "flag": True,
    "tags": ["a", "b", "entity:PERSON:alice"],
    "title": "Hello World",
    "user": {"age": 41, "name": "Ann"},
    "none": None,
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"cat": "news"}, True),
        ({"cat": "sport"}, False),
        ({"cat": F.eq("news")}, True),
        ({"cat": F.ne("news")}, False),
        ({"missing": F.ne("x")}, True),  # absent counts as "not equal"
        ({"n": F.gt(4)}, True),
        ({"n": F.gt(5)}, False),
        ({"n": F.gte(5)}, True),
        ({"x": F.lt(2.5)}, False),
        ({"x": F.lte(2.5)}, True),
        ({"n": 5.0}, True),  # numbers compare by value
        ({"flag": 1}, False),  # but true is not 1
        ({"n": F.gt("a")}, False),  # a string bound never matches a number
        ({"title": F.gt("Hello")}, True),  # strings compare lexically
        ({"cat": F.in_(["news", "blog"])}, True),
        ({"cat": F.nin(["news", "blog"])}, False),
        ({"missing": F.nin(["x"])}, True),
        ({"cat": F.exists()}, True),
        ({"missing": F.exists(False)}, True),
        ({"none": F.exists()}, True),  # present with a null value is present
        ({"title": F.contains("lo Wo")}, True),
        ({"title": F.contains("hello")}, False),
        ({"title": F.icontains("HELLO")}, True),
        ({"tags": F.contains("a")}, True),  # on an array: membership
        ({"title": F.starts_with("Hell")}, True),
        ({"title": F.ends_with("World")}, True),
        ({"title": F.glob("H*o W?rld")}, True),
        ({"title": F.glob("h*")}, False),
        ({"title": F.regex(r"^Hel+o\s")}, True),
        ({"tags": F.array_contains("entity:PERSON:alice")}, True),
        ({"tags": F.array_contains_all(["a", "b"])}, True),
        ({"tags": F.array_contains_all(["a", "z"])}, False),
        ({"tags": F.array_contains_any(["z", "b"])}, True),
        ({"cat": F.array_contains("news")}, False),  # not an array
        ({"user.age": F.gte(40)}, True),  # dotted paths reach into objects
        ({"user.missing": F.exists()}, False),
        (F.and_({"cat": "news"}, {"n": F.gt(1)}), True),
        (F.and_({"cat": "news"}, {"n": F.gt(10)}), False),
        (F.or_({"cat": "sport"}, {"n": F.gt(1)}), True),
        ({"cat": "news", "n": 6}, False),  # several keys are AND-ed
        ({"n": {"$gt": 1, "$lt": 10}}, True),  # several operators are AND-ed
        ({"tags": ["a", "b", "entity:PERSON:alice"]}, True),  # lists compare whole
        ({}, True),
    ],
)
def test_operator_semantics(spec: dict[str, Any], expected: bool) -> None:
    assert compile_filter(spec)(RECORD) is expected


def test_empty_and_missing_filters_match_everything() -> None:
    assert compile_filter(None) is MatchAll
    assert compile_filter({}) is MatchAll


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"a": {"$foo": 1}}, "unknown filter operator '$foo'"),
        ({"$gt": 3}, "'$gt'"),  # a field operator at the top level
        ({"$nor": []}, "unknown filter operator '$nor'"),
        ({"a": {"$in": "x"}}, "must be a list"),
        ({"a": {"$nin": 3}}, "must be a list"),
        ({"a": {"$gt": [1]}}, "number or a string"),
        ({"a": {"$gt": None}}, "number or a string"),
        ({"a": {"$exists": "yes"}}, "true or false"),
        ({"a": {"$startsWith": 3}}, "must be a string"),
        ({"a": {"$regex": "("}}, "not a valid regular expression"),
        ({"a": {"$arrayContainsAll": "x"}}, "must be a list"),
        ({"$and": {}}, "non-empty list"),
        ({"$or": []}, "non-empty list"),
        ({"$and": [3]}, "must be an object"),
        ({"a": {"$eq": 1, "b": 2}}, "mixes operators"),
        ({"a": {"$and": [{"b": 1}]}}, "top level"),
        ({"": 1}, "empty field name"),
        ([1, 2], "must be an object"),
        ("cat", "must be an object"),
        ({"a": {"$gt": float("nan")}}, "finite"),
        ({"a": float("inf")}, "finite"),
    ],
)
def test_bad_filters_are_invalid_input_naming_the_problem(spec: Any, needle: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_filter(spec)
    assert needle in caught.value.message


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    spec: dict[str, Any] = {"a": 1}
    for _ in range(200):
        spec = {"$and": [spec]}
    with pytest.raises(InvalidInput, match="nested"):
        compile_filter(spec)


# --- property test against a brute-force reference -----------------------------------------

FIELDS = ("a", "b", "c")
scalars = st.one_of(
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False, allow_infinity=False),
    st.sampled_from(["x", "y", "xy", "Yx", ""]),
    st.booleans(),
    st.none(),
)
values = st.one_of(scalars, st.lists(st.sampled_from(["x", "y", 1, 2]), max_size=3))
metadata = st.dictionaries(st.sampled_from(FIELDS), values, max_size=3)
strings = st.sampled_from(["x", "y", "X", "xy", ""])
numbers = st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False))


def field_ops() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda v: {"$eq": v}, scalars),
        st.builds(lambda v: {"$ne": v}, scalars),
        st.builds(
            lambda op, v: {op: v},
            st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
            st.one_of(numbers, strings),
        ),
        st.builds(lambda vs: {"$in": vs}, st.lists(scalars, max_size=3)),
        st.builds(lambda vs: {"$nin": vs}, st.lists(scalars, max_size=3)),
        st.builds(lambda b: {"$exists": b}, st.booleans()),
        st.builds(lambda s: {"$contains": s}, strings),
        st.builds(lambda s: {"$icontains": s}, strings),
        st.builds(lambda s: {"$startsWith": s}, strings),
        st.builds(lambda s: {"$endsWith": s}, strings),
        st.builds(lambda s: {"$glob": s}, st.sampled_from(["x*", "*y", "?", "*"])),
        st.builds(lambda s: {"$regex": s}, st.sampled_from(["^x", "y$", "x|y"])),
        st.builds(lambda v: {"$arrayContains": v}, st.sampled_from(["x", "y", 1, 2])),
        st.builds(
            lambda vs: {"$arrayContainsAll": vs}, st.lists(st.sampled_from(["x", 1]), max_size=2)
        ),
        st.builds(
            lambda vs: {"$arrayContainsAny": vs}, st.lists(st.sampled_from(["y", 2]), max_size=2)
        ),
    )


leaf = st.one_of(
    st.builds(lambda f, v: {f: v}, st.sampled_from(FIELDS), scalars),
    st.builds(lambda f, op: {f: op}, st.sampled_from(FIELDS), field_ops()),
)
filters = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda cs: {"$and": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"$or": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=6,
)

MISSING = object()


def same(a: Any, b: Any) -> bool:
    """JSON equality, written independently of the engine's."""
    if a is MISSING:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=0, abs_tol=0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def reference(spec: dict[str, Any], record: dict[str, Any]) -> bool:
    for key, value in spec.items():
        if key == "$and":
            ok = all(reference(s, record) for s in value)
        elif key == "$or":
            ok = any(reference(s, record) for s in value)
        else:
            actual = record.get(key, MISSING)
            if isinstance(value, dict):
                ok = all(check(op, operand, actual) for op, operand in value.items())
            else:
                ok = same(actual, value)
        if not ok:
            return False
    return True


def check(op: str, operand: Any, v: Any) -> bool:
    is_num = isinstance(v, int | float) and not isinstance(v, bool)
    is_str = isinstance(v, str)
    if op == "$eq":
        return same(v, operand)
    if op == "$ne":
        return not same(v, operand)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        operand_num = isinstance(operand, int | float) and not isinstance(operand, bool)
        if not ((operand_num and is_num) or (isinstance(operand, str) and is_str)):
            return False
        return {"$gt": v > operand, "$gte": v >= operand, "$lt": v < operand, "$lte": v <= operand}[
            op
        ]
    if op == "$in":
        return any(same(v, x) for x in operand)
    if op == "$nin":
        return not any(same(v, x) for x in operand)
    if op == "$exists":
        return (v is not MISSING) == operand
    if op == "$contains":
        if is_str:
            return isinstance(operand, str) and operand in v
        return isinstance(v, list) and any(same(x, operand) for x in v)
    if op == "$icontains":
        return is_str and operand.lower() in v.lower()
    if op == "$startsWith":
        return is_str and v.startswith(operand)
    if op == "$endsWith":
        return is_str and v.endswith(operand)
    if op == "$glob":
        pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in operand)
        return is_str and re.fullmatch(pattern, v, re.DOTALL) is not None
    if op == "$regex":
        return is_str and re.search(operand, v) is not None
    if op == "$arrayContains":
        return isinstance(v, list) and any(same(x, operand) for x in v)
    if op == "$arrayContainsAll":
        return isinstance(v, list) and all(any(same(x, w) for x in v) for w in operand)
    if op == "$arrayContainsAny":
        return isinstance(v, list) and any(any(same(x, w) for x in v) for w in operand)
    raise AssertionError(op)


@settings(max_examples=400, deadline=None)
@given(spec=filters, records=st.lists(metadata, min_size=1, max_size=8))
def test_compiled_filters_agree_with_a_brute_force_reference(
    spec: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    predicate = compile_filter(spec)
    for record in records:
        assert predicate(record) is reference(spec, record), (spec, record)
