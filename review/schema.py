"""A strict validator for the JSON-Schema subset the API publishes in /openapi.json.

Supported: type (object, string, integer, boolean, array), properties, required,
additionalProperties false, enum, maxLength, minimum, maximum, maxItems, items. Booleans
are not integers here (JSON Schema agrees; Python's `bool` subclassing `int` does not).
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def _object(value: dict[str, Any], schema: dict[str, Any], path: str) -> str | None:
    props: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            return f"{path}{name}: required"
    if schema.get("additionalProperties") is False:
        extra = sorted(set(value) - set(props))
        if extra:
            return f"{path}{extra[0][:64]}: unknown field"
    for name, sub in props.items():
        if name in value:
            problem = validate(value[name], sub, f"{path}{name}.")
            if problem:
                return problem
    return None


def _bounds(value: Any, schema: dict[str, Any], where: str) -> str | None:
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: must be one of {', '.join(map(str, schema['enum']))}"
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        return f"{where}: at most {schema['maxLength']} characters"
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        return f"{where}: out of range"
    if isinstance(value, list) and len(value) > schema.get("maxItems", len(value)):
        return f"{where}: at most {schema['maxItems']} items"
    return None


def validate(value: Any, schema: dict[str, Any], path: str = "") -> str | None:
    """None when `value` fits `schema`, else a short message naming the field."""
    where = path.rstrip(".") or "body"
    kind = schema.get("type")
    if kind is not None and not _type_ok(value, kind):
        return f"{where}: must be {kind}"
    problem = _bounds(value, schema, where)
    if problem:
        return problem
    if isinstance(value, dict):
        return _object(value, schema, path)
    if isinstance(value, list) and "items" in schema:
        for index, entry in enumerate(value):
            problem = validate(entry, schema["items"], f"{path}{index}.")
            if problem:
                return problem
    return None
