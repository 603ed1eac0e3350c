"""The JSON API under /api/v1/, described by the hand-written OpenAPI 3 document below.

Request bodies are checked against the same schemas the document publishes (strict:
wrong types, unknown fields such as `role` or `claimed_by`, and oversized values are a
400), bodies over the app's limit are a 413, and no input gives a 5xx (docs/hazards.md A-11).
Authentication is a bearer API token or the browser session (then with X-CSRF-Token).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from sqlalchemy import desc, select

from crawler.db.models import AuditEvent, Notice
from review import exposure, queue
from review.decisions import ACTIONS, DecisionRequest, decide
from review.items import load_item
from review.schema import validate
from review.web import cfg, found, now, reader, roles, user, valid, writing

bp = Blueprint("api", __name__)

STATUSES = list(queue.FILTER_STATUSES)
_TEXT = {"type": "string", "maxLength": 255}
FILTERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "country": {"type": "string", "maxLength": 2},
        "host": _TEXT,
        "list": _TEXT,
        "status": {"type": "string", "enum": STATUSES},
    },
}
DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["action", "version"],
    "properties": {
        "action": {"type": "string", "enum": list(ACTIONS)},
        "version": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        "category": {"type": "string", "maxLength": 64},
        "notes": {"type": "string", "maxLength": 10000},
        "apply_to": {
            "type": "array",
            "maxItems": 500,
            "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        },
        "add_benign": {"type": "boolean"},
        # Media ids ticked `Illegal` (Confirm); absent: the default ticks (exact known).
        "illegal_media": {
            "type": "array",
            "maxItems": 500,
            "items": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        },
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    if not request.is_json:
        abort(415, "send application/json")
    data = request.get_json(silent=True)
    if data is None and request.get_data():
        abort(400, "the body is not valid JSON")
    data = {} if data is None else data
    valid(validate(data, schema))
    assert isinstance(data, dict)
    return data


def _filters(values: dict[str, Any]) -> queue.QueueFilters:
    valid(validate(values, FILTERS_SCHEMA))
    filters = queue.QueueFilters(
        values.get("country"), values.get("host"), values.get("list"), values.get("status")
    )
    valid(filters.problem())
    return filters


@bp.get("/api/v1/me")
@roles()
def me() -> Response:
    p = user()
    return jsonify({"id": p.user_id, "username": p.username, "role": p.role})


@bp.get("/api/v1/queue")
@roles()
def queue_list() -> Response:
    args = request.args.to_dict()
    limit = _int_arg(args.pop("limit", None), 50, 1, 200)
    offset = _int_arg(args.pop("offset", None), 0, 0, 10_000_000)
    rows = queue.list_queue(reader(), _filters(args), limit=limit, offset=offset)
    items = [
        {
            "id": r.id,
            "url": r.url,
            "title": r.title,
            "host": r.host,
            "country": r.country,
            "priority": r.priority,
            "status": r.status,
            "claimed": r.claimed_by is not None,
            "no_viewing_needed": r.no_viewing_needed,
        }
        for r in rows
    ]
    return jsonify({"items": items, "limit": limit, "offset": offset})


def _int_arg(value: str | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        abort(400, f"must be a whole number from {low} to {high}")
    return int(value)


@bp.post("/api/v1/queue/next")
@roles()
def queue_next() -> Response:
    filters = _filters(_body(FILTERS_SCHEMA))
    lease = timedelta(seconds=cfg().lease_seconds)
    with writing() as session:
        item_id = queue.claim_next(session, user(), filters, now(), lease)
    if item_id is None:
        return Response(status=204)
    return jsonify({"item_id": item_id})


@bp.get("/api/v1/items/<int:item_id>")
@roles()
def item(item_id: int) -> Response:
    return jsonify(found(load_item(reader(), item_id)).as_json())


@bp.post("/api/v1/items/<int:item_id>/lease")
@roles()
def lease(item_id: int) -> Response:
    _body({"type": "object", "additionalProperties": False, "properties": {}})
    with writing() as session:
        ok = queue.renew_lease(
            session, user(), item_id, now(), timedelta(seconds=cfg().lease_seconds)
        )
    if not ok:
        abort(409, "you do not hold this item")
    return jsonify({"item_id": item_id, "renewed": True})


@bp.post("/api/v1/items/<int:item_id>/decision")
@roles()
def decision(item_id: int) -> Response:
    body = _body(DECISION_SCHEMA)
    req = DecisionRequest(
        action=body["action"],
        version=body["version"],
        category=body.get("category"),
        notes=body.get("notes"),
        apply_to=tuple(body.get("apply_to", ())),
        add_benign=bool(body.get("add_benign", False)),
        illegal_media=(
            tuple(body["illegal_media"]) if body.get("illegal_media") is not None else None
        ),
    )
    view = found(load_item(reader(), item_id))  # read before the writer's turn
    with writing() as session:
        outcome = decide(session, user(), item_id, req, cfg(), now(), view)
    if not outcome.ok:
        abort(outcome.http_status, outcome.message)
    return jsonify(
        {
            "item_id": item_id,
            "status": outcome.status,
            "applied_to": outcome.applied_to,
            "skipped": outcome.skipped,
            "settled": outcome.settled,
            "confirm_match": outcome.confirm_match,
            "benign_proposed": outcome.benign_proposed,
            "benign_joined": outcome.benign_joined,
        }
    )


@bp.get("/api/v1/exposure")
@roles()
def exposure_api() -> Response:
    p = user()
    budget = cfg().daily_reveal_budget
    mine = exposure.own_day(reader(), (p.user_id, p.username), now(), budget)
    out: dict[str, Any] = {"own": _exposure_json(mine)}
    if p.is_lead:
        out["team"] = [_exposure_json(e) for e in exposure.team_day(reader(), now(), budget)]
    return jsonify(out)


def _exposure_json(e: exposure.Exposure) -> dict[str, Any]:
    return {
        "username": e.username,
        "day": e.day,
        "reveals": e.reveals,
        "views": e.views,
        "seconds": e.seconds,
        "budget": e.budget,
        "over_budget": e.over_budget,
    }


@bp.get("/api/v1/notices")
@roles()
def notices() -> Response:
    rows = reader().execute(select(Notice).order_by(desc(Notice.id)).limit(500)).scalars()
    return jsonify(
        [
            {
                "id": n.id,
                "serial": n.serial,
                "status": n.status,
                "abuse_contact": n.abuse_contact,
                "created_at": n.created_at.isoformat(),
                "sent_at": n.sent_at.isoformat() if n.sent_at else None,
                "kind": n.kind,
                "route": n.route,
                "recipient": n.recipient or n.abuse_contact,
                "held_at": n.held_at.isoformat() if n.held_at else None,
            }
            for n in rows
        ]
    )


@bp.get("/api/v1/audit")
@roles("lead", "admin")
def audit() -> Response:
    limit = _int_arg(request.args.get("limit"), 100, 1, 1000)
    rows = reader().execute(select(AuditEvent).order_by(desc(AuditEvent.id)).limit(limit)).scalars()
    return jsonify(
        [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "details": e.details,
                "hash": e.hash,
            }
            for e in rows
        ]
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    from review.openapi import document

    return jsonify(document(FILTERS_SCHEMA, DECISION_SCHEMA, STATUSES))
