"""The metadata filter DSL of dakera-api.md §6, compiled once into a plain predicate.

A filter is a JSON object. Each key is either a metadata field, whose value is a literal
(implicit ``$eq``) or an object of ``$``-operators (AND-combined), or a combinator ``$and`` /
``$or`` holding a non-empty list of filters. Several keys in one object are AND-combined; an
empty object matches everything.

Compiling validates the whole filter up front, so a bad filter is a 400 naming the operator or
the field before any search runs, never a 500 halfway through one. The compiled predicate takes
a record's metadata and never raises: a field whose value has another type than the operand
simply does not match.

Semantics (chosen to match the SDK's ``F`` builder and to be checkable by brute force):

* equality is JSON equality: ``1 == 1.0``, but ``true`` is not ``1``; lists and objects compare
  whole;
* ``$gt/$gte/$lt/$lte`` compare numbers with numbers and strings with strings (lexically);
* ``$ne`` and ``$nin`` also match records that lack the field (the field is "not equal");
* ``$in`` matches when the field equals one of the values;
* ``$contains`` is a substring test on a string field and a membership test on an array field;
  ``$icontains`` ignores case; ``$startsWith`` / ``$endsWith`` / ``$glob`` / ``$regex`` need a
  string field (``$glob``: ``*`` and ``?`` wildcards, case-sensitive; ``$regex``: Python
  ``re.search``);
* ``$arrayContains`` / ``$arrayContainsAll`` / ``$arrayContainsAny`` need an array field;
* a field name with dots (``"user.age"``) reaches into nested objects when no key with that
  exact name exists.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

from dakera_server.errors import InvalidInput

__all__ = ["FIELD_OPERATORS", "LOGICAL_OPERATORS", "MatchAll", "Predicate", "compile_filter"]

Predicate = Callable[[Mapping[str, Any]], bool]

LOGICAL_OPERATORS = ("$and", "$or")
FIELD_OPERATORS = (
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$contains",
    "$icontains",
    "$startsWith",
    "$endsWith",
    "$glob",
    "$regex",
    "$arrayContains",
    "$arrayContainsAll",
    "$arrayContainsAny",
)
MAX_DEPTH = 16
MAX_LIST = 10_000
MAX_PATTERN_CHARS = 512
_MISSING = object()


def _match_all(metadata: Mapping[str, Any]) -> bool:
    return True


MatchAll: Predicate = _match_all


def compile_filter(spec: Any, where: str = "filter") -> Predicate:
    """Validate ``spec`` and return a predicate over a record's metadata.

    ``None`` and ``{}`` match everything (and return ``MatchAll``, so callers can skip the
    predicate). Raises ``InvalidInput`` naming the first unknown operator, bad operand or
    malformed clause.
    """
    if spec is None:
        return MatchAll
    predicate = _compile_object(spec, where, 0)
    return MatchAll if predicate is None else predicate


def _compile_object(spec: Any, where: str, depth: int) -> Predicate | None:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"'{where}' is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(spec, dict):
        raise InvalidInput(f"'{where}' must be an object, got {_type_name(spec)}")
    clauses: list[Predicate] = []
    for key, value in spec.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"'{where}' has an empty field name")
        if key.startswith("$"):
            if key not in LOGICAL_OPERATORS:
                hint = f' (it applies to a field: {{"field": {{"{key}": ...}}}})'
                raise InvalidInput(
                    f"unknown filter operator '{key}' in '{where}'"
                    + (hint if key in FIELD_OPERATORS else "")
                )
            clauses.append(_compile_logical(key, value, f"{where}.{key}", depth))
        else:
            clauses.append(_compile_field(key, value, f"{where}.{key}", depth))
    if not clauses:
        return None
    if len(clauses) == 1:
        return clauses[0]
    return lambda metadata: all(clause(metadata) for clause in clauses)


def _compile_logical(op: str, value: Any, where: str, depth: int) -> Predicate:
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"'{where}' must be a non-empty list of filter objects")
    parts = [
        _compile_object(item, f"{where}[{i}]", depth + 1) or MatchAll
        for i, item in enumerate(value)
    ]
    if op == "$and":
        return lambda metadata: all(part(metadata) for part in parts)
    return lambda metadata: any(part(metadata) for part in parts)


def _compile_field(field: str, value: Any, where: str, depth: int) -> Predicate:
    getter = _getter(field)
    if isinstance(value, dict) and any(isinstance(k, str) and k.startswith("$") for k in value):
        if not all(isinstance(k, str) and k.startswith("$") for k in value):
            raise InvalidInput(
                f"'{where}' mixes operators and plain keys; use only '$' operators there"
            )
        tests = [_compile_operator(op, operand, f"{where}.{op}") for op, operand in value.items()]
        if len(tests) == 1:
            test = tests[0]
            return lambda metadata: test(getter(metadata))
        return lambda metadata: all(t(v) for v in (getter(metadata),) for t in tests)
    _check_literal(value, where, depth)
    return lambda metadata: _equal(getter(metadata), value)


def _getter(field: str) -> Callable[[Mapping[str, Any]], Any]:
    if "." not in field:
        return lambda metadata: metadata.get(field, _MISSING)
    parts = field.split(".")

    def get(metadata: Mapping[str, Any]) -> Any:
        if field in metadata:
            return metadata[field]
        current: Any = metadata
        for part in parts:
            if not isinstance(current, dict) or part not in current:
                return _MISSING
            current = current[part]
        return current

    return get


def _compile_operator(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if op in ("$eq", "$ne"):
        _check_literal(operand, where, 0)
        if op == "$eq":
            return lambda v: _equal(v, operand)
        return lambda v: not _equal(v, operand)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _compile_comparison(op, operand, where)
    if op in ("$in", "$nin"):
        values = _check_list(operand, where)
        if op == "$in":
            return lambda v: any(_equal(v, x) for x in values)
        return lambda v: not any(_equal(v, x) for x in values)
    if op == "$exists":
        if not isinstance(operand, bool):
            raise InvalidInput(f"'{where}' must be true or false")
        return lambda v: (v is not _MISSING) == operand
    if op == "$contains":
        _check_literal(operand, where, 0)
        return lambda v: _contains(v, operand)
    if op in ("$icontains", "$startsWith", "$endsWith"):
        text = _check_string(operand, where)
        if op == "$icontains":
            folded = text.casefold()
            return lambda v: isinstance(v, str) and folded in v.casefold()
        if op == "$startsWith":
            return lambda v: isinstance(v, str) and v.startswith(text)
        return lambda v: isinstance(v, str) and v.endswith(text)
    if op in ("$glob", "$regex"):
        return _compile_pattern(op, _check_string(operand, where), where)
    if op == "$arrayContains":
        _check_literal(operand, where, 0)
        return lambda v: isinstance(v, list) and any(_equal(x, operand) for x in v)
    if op in ("$arrayContainsAll", "$arrayContainsAny"):
        wanted = _check_list(operand, where)
        combine = all if op == "$arrayContainsAll" else any
        return lambda v: (
            isinstance(v, list) and combine(any(_equal(x, w) for x in v) for w in wanted)
        )
    if op in LOGICAL_OPERATORS:
        raise InvalidInput(f"'{where}': '{op}' combines whole filters and must be at the top level")
    raise InvalidInput(f"unknown filter operator '{op}' in '{where}'")


def _compile_comparison(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if _is_number(operand):
        _check_literal(operand, where, 0)  # refuses NaN and infinities
        kind: Callable[[Any], bool] = _is_number
    elif isinstance(operand, str):
        kind = _is_str
    else:
        raise InvalidInput(f"'{where}' must be a number or a string, got {_type_name(operand)}")
    if op == "$gt":
        return lambda v: kind(v) and v > operand
    if op == "$gte":
        return lambda v: kind(v) and v >= operand
    if op == "$lt":
        return lambda v: kind(v) and v < operand
    return lambda v: kind(v) and v <= operand


def _compile_pattern(op: str, pattern: str, where: str) -> Callable[[Any], bool]:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidInput(f"'{where}' is longer than {MAX_PATTERN_CHARS} characters")
    source = fnmatch.translate(pattern) if op == "$glob" else pattern
    try:
        compiled = re.compile(source)
    except re.error as exc:
        raise InvalidInput(f"'{where}' is not a valid regular expression: {exc.msg}") from None
    if op == "$glob":
        return lambda v: isinstance(v, str) and compiled.match(v) is not None
    return lambda v: isinstance(v, str) and compiled.search(v) is not None


# --- values ------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, booleans only with booleans, containers whole."""
    if left is _MISSING:
        return False
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(
            _equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def _contains(value: Any, operand: Any) -> bool:
    if isinstance(value, str):
        return isinstance(operand, str) and operand in value
    if isinstance(value, list):
        return any(_equal(item, operand) for item in value)
    return False


def _check_literal(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"'{where}' is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInput(f"'{where}' must be a finite number")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_literal(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_literal(item, f"{where}.{key}", depth + 1)
        return
    raise InvalidInput(f"'{where}' has an unsupported value of type {_type_name(value)}")


def _check_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"'{where}' must be a list, got {_type_name(value)}")
    if len(value) > MAX_LIST:
        raise InvalidInput(f"'{where}' has more than {MAX_LIST} values")
    _check_literal(value, where, 0)
    return value


def _check_string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"'{where}' must be a string, got {_type_name(value)}")
    return value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
