"""The OpenAPI 3.0 description of /api/v1/, built from the schemas the API validates with."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}


def _responses(ok: dict[str, Any], *codes: str) -> dict[str, Any]:
    out: dict[str, Any] = {"200": ok}
    names = {
        "204": "nothing to claim",
        "400": "invalid input",
        "401": "not signed in",
        "403": "forbidden for this role",
        "404": "no such item",
        "409": "stale version or not held",
        "413": "body too large",
        "415": "not JSON",
    }
    for code in codes:
        body = {"application/json": {"schema": _ERROR}}
        out[code] = (
            {"description": names[code]}
            if code == "204"
            else {
                "description": names[code],
                "content": body,
            }
        )
    return out


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _item_id() -> dict[str, Any]:
    return {
        "name": "item_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    }


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def document(
    filters: dict[str, Any], decision: dict[str, Any], statuses: list[str]
) -> dict[str, Any]:
    obj = {"type": "object"}
    auth = ("401",)
    queue_params = [
        _query("country", {"type": "string", "maxLength": 2}),
        _query("host", {"type": "string", "maxLength": 255}),
        _query("list", {"type": "string", "maxLength": 255}),
        _query("status", {"type": "string", "enum": statuses}),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
        _query("offset", {"type": "integer", "minimum": 0, "maximum": 10_000_000}),
    ]
    body = {"required": True, "content": {"application/json": {"schema": filters}}}
    paths: dict[str, Any] = {
        "/api/v1/me": {"get": {"responses": _responses(_json(obj), *auth)}},
        "/api/v1/queue": {
            "get": {"parameters": queue_params, "responses": _responses(_json(obj), "400", *auth)}
        },
        "/api/v1/queue/next": {
            "post": {
                "requestBody": body,
                "responses": _responses(_json(obj), "204", "400", "413", "415", *auth),
            }
        },
        "/api/v1/items/{item_id}": {
            "get": {"parameters": [_item_id()], "responses": _responses(_json(obj), "404", *auth)}
        },
        "/api/v1/items/{item_id}/lease": {
            "post": {
                "parameters": [_item_id()],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "additionalProperties": False}
                        }
                    },
                },
                "responses": _responses(_json(obj), "400", "409", "413", "415", *auth),
            }
        },
        "/api/v1/items/{item_id}/decision": {
            "post": {
                "parameters": [_item_id()],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": decision}},
                },
                "responses": _responses(
                    _json(obj), "400", "403", "404", "409", "413", "415", *auth
                ),
            }
        },
        "/api/v1/exposure": {"get": {"responses": _responses(_json(obj), *auth)}},
        "/api/v1/notices": {
            "get": {"responses": _responses(_json({"type": "array", "items": obj}), *auth)}
        },
        "/api/v1/audit": {
            "get": {
                "parameters": [_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
                "responses": _responses(
                    _json({"type": "array", "items": obj}), "400", "403", *auth
                ),
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "takedown review API", "version": "1"},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
        "paths": paths,
    }
