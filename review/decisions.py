"""Decisions on review items: Confirm, Reject, Escalate, and a lead's Countersign.

One decision per round (docs/hazards.md S-08): the decision is one conditional UPDATE on the
item's `version` (and, except for countersigning, on the caller still holding the item),
so of twenty identical POSTs exactly one changes the row and writes a `Decision`; the
others get 409 and are audited as stale. The outcome is returned, never raised, so the
audit event of a refused attempt is committed with the caller's transaction.

Decisions are about media (docs/interface.md): `illegal_media` names the media ids
the analyst ticked `Illegal` (None: the default ticks, `ItemView.default_illegal`). A
Confirm adds their hashes to `analyst-confirmed` and spreads in the same transaction
(`crawler.matching.media_decisions`): exact copies on other stored pages are confirmed, near copies
queued as confirm-match items. A media already on a benign list is refused (409): a lead
removes the benign entry first. Under the four-eyes rule the media spread only once the
confirmation is final (an exact known match; a countersigned one spreads nothing more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.orm import Session

from crawler.db.audit import Event
from crawler.db.models import Decision, ReviewItem
from crawler.matching import benign_proposals, exchanges, media_decisions
from review import audit, exposure
from review.audit import record
from review.auth import Principal
from review.config import ReviewConfig
from review.items import ItemView, load_item
from review.queue import claimable_statuses

_INSERT_DECISION = insert(Decision)
ACTIONS = ("confirm", "reject", "escalate", "countersign")
MAX_NOTES = 10_000


@dataclass(frozen=True)
class DecisionRequest:
    action: str
    version: int
    category: str | None = None
    notes: str | None = None
    apply_to: tuple[int, ...] = ()
    add_benign: bool = False
    illegal_media: tuple[int, ...] | None = None  # media ids ticked `Illegal`; None: default


@dataclass
class DecisionOutcome:
    http_status: int
    message: str
    item_id: int
    status: str | None = None
    applied_to: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    settled: int = 0  # other pages the media decision confirmed at once
    benign_proposed: int = 0  # media proposed for the benign list (benign four-eyes)
    benign_joined: int = 0  # media that joined the benign list with this decision
    confirm_match: int = 0  # near copies queued as confirm-match items

    @property
    def ok(self) -> bool:
        return self.http_status == 200


def _invalid(req: DecisionRequest, cfg: ReviewConfig) -> str | None:
    if req.action not in ACTIONS:
        return f"unknown action; use one of {', '.join(ACTIONS)}"
    if req.action == "confirm" and req.category not in cfg.categories:
        return f"Confirm needs a category: one of {', '.join(cfg.categories)}"
    if req.notes is not None and len(req.notes) > MAX_NOTES:
        return f"notes are limited to {MAX_NOTES} characters"
    if req.apply_to and req.action not in ("confirm", "reject"):
        return "only Confirm and Reject can apply to other pages"
    return None


def _awaits_countersign(view: ItemView) -> bool:
    return (
        view.status == "escalated"
        and view.category is not None
        and view.decided_by_name is not None
    )


def _new_status(req: DecisionRequest, view: ItemView, cfg: ReviewConfig) -> str:
    if req.action == "escalate":
        return "escalated"
    if req.action == "reject":
        return "rejected"
    if req.action == "countersign":
        return "confirmed"
    # Four-eyes: a confirmation without an exact known match waits for a lead's countersign.
    return "escalated" if cfg.four_eyes and not view.has_exact_known else "confirmed"


def _guard(req: DecisionRequest, principal: Principal, view: ItemView) -> ColumnElement[bool]:
    if req.action == "countersign":
        return ReviewItem.status == "escalated"
    return (ReviewItem.claimed_by == principal.user_id) & ReviewItem.status.in_(
        claimable_statuses(principal)
    )


def _refusal(req: DecisionRequest, principal: Principal, view: ItemView) -> tuple[int, str] | None:
    if req.action == "countersign":
        if not principal.is_lead:
            return 403, "only a lead countersigns"
        if not _awaits_countersign(view):
            return 409, "this item is not waiting for a countersignature"
        if view.decided_by_name == principal.username:
            return 403, "a confirmation is countersigned by someone else"
        return None
    if view.claimed_by != principal.user_id and view.version == req.version:
        return 403, "claim this item before deciding on it"
    return None


def _write(
    session: Session,
    principal: Principal,
    item_id: int,
    req: DecisionRequest,
    status: str,
    guard: ColumnElement[bool],
    now: datetime,
) -> bool:
    values: dict[str, object] = {
        "status": status,
        "version": ReviewItem.version + 1,
        "claimed_by": None,
        "lease_until": None,
        "updated_at": now,
    }
    if req.action == "countersign":
        values["countersigned_by"] = principal.user_id
    else:
        values.update(
            category=req.category if req.action == "confirm" else None,
            notes=req.notes,
            decided_by=principal.user_id,
            decided_at=now,
            decided_via="analyst",
        )
    conn = session.connection()
    done = conn.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item_id, ReviewItem.version == req.version, guard)
        .values(**values)
        .returning(ReviewItem.id)
    ).scalar()
    if done is None:
        return False
    audit.at_commit(  # nothing reads it back: on PostgreSQL it goes with the COMMIT
        session,
        _INSERT_DECISION,
        {
            "item_id": item_id,
            "user_id": principal.user_id,
            "action": req.action,
            "category": req.category if req.action in ("confirm", "countersign") else None,
            "notes": req.notes,
            "item_version": req.version,
            "created_at": now,
        },
    )
    return True


def decide(
    session: Session,
    principal: Principal,
    item_id: int,
    req: DecisionRequest,
    cfg: ReviewConfig,
    now: datetime,
    view: ItemView | None = None,
) -> DecisionOutcome:
    """Decide in `session` (a write transaction).

    `view` may be the item as read before that transaction began, so that on SQLite the
    writer's turn is not held for the item's reads: the conditional UPDATE on `version`
    (and holder and status) still refuses a decision on an item that changed since.
    """
    view = view if view is not None else load_item(session, item_id)
    if view is None:
        return DecisionOutcome(404, "no such item", item_id)
    problem = _invalid(req, cfg)
    if problem:
        return DecisionOutcome(400, problem, item_id)
    if req.action == "countersign":
        req = DecisionRequest("countersign", req.version, view.category, req.notes)
    refusal = _refusal(req, principal, view)
    if refusal:
        _audit(session, principal, item_id, "decision.refused", req, {"reason": refusal[1]})
        return DecisionOutcome(refusal[0], refusal[1], item_id)
    related = {r.id for r in view.related}
    if not set(req.apply_to) <= related:
        return DecisionOutcome(400, "apply_to names items that do not share this media", item_id)
    ticked, problem = _ticked(req, view)
    if problem:
        return DecisionOutcome(400, problem, item_id)
    if req.action == "confirm":
        listed = media_decisions.benign_listed(session, ticked)
        if listed:
            numbers = {m.media_id: n for n, m in enumerate(view.media, 1)}
            first = min(listed, key=lambda m: numbers.get(m, 0))
            message = (
                f"media {numbers.get(first)} is on the benign list {listed[first]!r}: "
                "a lead must remove that entry before it can be confirmed"
            )
            _audit(session, principal, item_id, "decision.refused", req, {"reason": message})
            return DecisionOutcome(409, message, item_id)
    status = _new_status(req, view, cfg)
    if not _write(session, principal, item_id, req, status, _guard(req, principal, view), now):
        _audit(session, principal, item_id, "decision.stale", req, {"version": req.version})
        return DecisionOutcome(409, "the item changed since you opened it; reload", item_id)
    outcome = DecisionOutcome(200, "recorded", item_id, status)
    _apply_to_related(session, principal, req, item_id, status, now, outcome)
    exchanges.after_decision(session, req.action, [item_id, *outcome.applied_to], now)
    if req.action == "reject" and cfg.benign_four_eyes:
        _benign_four_eyes(session, principal, view, cfg, req.add_benign, now, outcome)
    elif req.action == "reject" and req.add_benign:
        _add_benign(session, principal, view, cfg)
    if req.action == "confirm" and status == "confirmed" and ticked:
        spread = media_decisions.confirm_media(
            session, ticked, req.category, item_id, cfg.categories, principal.username
        )
        outcome.settled = spread.changes.auto_confirmed
        outcome.confirm_match = _confirm_match_count(session, spread.pages, item_id)
    exposure.item_left(session, principal.user_id, now, cfg.max_item_seconds)
    details: dict[str, object] = {
        "status": status,
        "applied_to": outcome.applied_to,
        "skipped": outcome.skipped,
    }
    if req.action == "confirm":
        details.update(illegal_media=list(ticked), settled=outcome.settled)
    _audit(session, principal, item_id, f"decision.{req.action}", req, details)
    return outcome


def _ticked(req: DecisionRequest, view: ItemView) -> tuple[list[int], str | None]:
    """The media ids ticked `Illegal`, or the reason the selection is refused."""
    if req.illegal_media is None:
        return (view.default_illegal if req.action == "confirm" else []), None
    on_page = {m.media_id for m in view.media if m.media_id is not None}
    chosen = sorted(set(req.illegal_media))
    if not set(chosen) <= on_page:
        return [], "illegal_media names media that this page does not show"
    if chosen and req.action != "confirm":
        return [], "only Confirm marks media illegal"
    return chosen, None


def _confirm_match_count(session: Session, pages: set[int], item_id: int) -> int:
    if not pages:
        return 0
    query = select(func.count()).where(
        ReviewItem.page_id.in_(sorted(pages)),
        ReviewItem.review_kind == "confirm-match",
        ReviewItem.status == "pending",
        ReviewItem.id != item_id,
    )
    return int(session.execute(query).scalar_one())


def _apply_to_related(
    session: Session,
    principal: Principal,
    req: DecisionRequest,
    item_id: int,
    status: str,
    now: datetime,
    outcome: DecisionOutcome,
) -> None:
    """Apply the same decision to the listed pages, each only if the caller could decide it
    directly; the others are skipped, and each refusal is audited on its item."""
    free = (ReviewItem.claimed_by.is_(None)) | (ReviewItem.lease_until < now)
    for other in sorted(set(req.apply_to)):
        item = session.get(ReviewItem, other)
        if item is None:
            continue
        notes = f"applied with item {item_id}" + (f": {req.notes}" if req.notes else "")
        sub = DecisionRequest(req.action, item.version, req.category, notes)
        refused = _related_refusal(principal, item, now)
        mine = ReviewItem.claimed_by == principal.user_id
        guard = ReviewItem.status.in_(claimable_statuses(principal)) & (free | mine)
        if refused is None and _write(session, principal, other, sub, status, guard, now):
            outcome.applied_to.append(other)
            continue
        outcome.skipped.append(other)
        reason = refused or "the item changed or was claimed meanwhile"
        extra = {"reason": reason, "apply_to_of": item_id}
        _audit(session, principal, other, "decision.refused", sub, extra)


def _related_refusal(principal: Principal, item: ReviewItem, now: datetime) -> str | None:
    """Why `principal` may not decide `item` through apply_to: the rules of a direct
    decision (its status is one the caller's role takes, and nobody else holds it)."""
    if item.status not in claimable_statuses(principal):
        return f"a {principal.role} does not decide {item.status} items"
    held = item.claimed_by is not None and item.claimed_by != principal.user_id
    if held and (item.lease_until is None or item.lease_until >= now):
        return "held by someone else"
    return None


def _add_benign(session: Session, principal: Principal, view: ItemView, cfg: ReviewConfig) -> None:
    """The page's media (not the exact known ones) join the benign list, every hash."""
    media = [m for m in view.media if m.media_id is not None and m.sha256 and not m.exact_known]
    if not media:
        return
    ids = [m.media_id for m in media if m.media_id is not None]
    media_decisions.benign_media(
        session, ids, view.id, cfg.categories, principal.username, cfg.benign_list
    )
    details = {"list": cfg.benign_list, "hashes": [m.sha256 for m in media]}
    record(
        session, Event(principal.username, "hashlist.benign_add", "review_item", view.id, details)
    )


def _benign_four_eyes(
    session: Session,
    principal: Principal,
    view: ItemView,
    cfg: ReviewConfig,
    add_benign: bool,
    now: datetime,
    outcome: DecisionOutcome,
) -> None:
    """A Reject agrees with every other person's pending proposal for a media this page
    shows; with `add_benign`, the page's other media are proposed (crawler.matching.benign_proposals)."""
    shown = {m.media_id for m in view.media if m.media_id is not None}
    others = [
        p for p in benign_proposals.pending(session, shown) if p.proposed_by != principal.user_id
    ]
    joined = benign_proposals.agree(
        session, others, principal.user_id, principal.username, cfg.categories, now, view.id
    )
    outcome.benign_joined = len(joined)
    if not add_benign:
        return
    media = [m for m in view.media if m.media_id is not None and m.sha256 and not m.exact_known]
    ids = [m.media_id for m in media if m.media_id is not None and m.media_id not in joined]
    proposed = benign_proposals.propose(
        session, ids, view.id, principal.user_id, principal.username, cfg.benign_list, now
    )
    outcome.benign_proposed = len(proposed)


def _audit(
    session: Session,
    principal: Principal,
    item_id: int,
    action: str,
    req: DecisionRequest,
    extra: dict[str, object],
) -> None:
    details: dict[str, object] = {"action": req.action, "version": req.version, **extra}
    if req.category:
        details["category"] = req.category
    if req.notes:
        details["notes"] = req.notes[:2000]
    record(session, Event(principal.username, action, "review_item", item_id, details))
