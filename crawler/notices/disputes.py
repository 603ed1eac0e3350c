"""Provider disputes of notices, re-assessed by a second lead (four-eyes).

- `open_dispute` records a provider's dispute of a notice: one row per URL disputed
  (every URL of the notice still listed, or the one named), audited `notice.disputed`.
- `resolve_dispute` records a lead's re-assessment. The lead must not have made, nor
  countersigned, the original decision on that URL (four-eyes; a decision taken by a
  trusted list, `list:NAME`, had no person, so any lead may re-assess it). Outcomes:
  `upheld` (the notice stands) or `withdrawn`: the URL leaves every open notice
  (`NoticeUrl.withdrawn_at`, no longer open), a notice left with no URL up is closed, and
  the item becomes `rejected` (a `withdraw` decision by the lead), so it leaves the
  confirmed URL lists and is never noticed again. Each outcome is audited
  (`dispute.upheld`, `dispute.withdrawn`) and counted in the transparency report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crawler.db.audit import Event, record
from crawler.db.models import (
    DISPUTE_OUTCOMES,
    Decision,
    Notice,
    NoticeDispute,
    NoticeUrl,
    ReviewItem,
    User,
)
from crawler.errors import UsageError
from crawler.notices.build import OPEN_NOTICE_STATUSES, find_notices

REASON_LIMIT = 4000


def open_dispute(
    session: Session,
    ref: str,
    reason: str,
    now: datetime,
    actor: str = "system",
    url: str | None = None,
) -> list[NoticeDispute]:
    """Record a provider's dispute of notice `ref` (id or serial), of one URL or all."""
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("--reason: say why the provider disputes the notice")
    if len(reason) > REASON_LIMIT:
        raise UsageError(f"--reason: at most {REASON_LIMIT} characters")
    (notice,) = find_notices(session, [ref])
    rows = session.execute(
        select(NoticeUrl)
        .where(NoticeUrl.notice_id == notice.id, NoticeUrl.withdrawn_at.is_(None))
        .order_by(NoticeUrl.id)
    ).scalars()
    urls = [u for u in rows if url is None or u.url == url]
    if not urls:
        what = f"URL {url[:80]!r}" if url else "URL still listed"
        raise UsageError(f"{notice.serial} has no {what}")
    pending = set(
        session.execute(
            select(NoticeDispute.item_id).where(
                NoticeDispute.notice_id == notice.id, NoticeDispute.outcome.is_(None)
            )
        ).scalars()
    )
    created = []
    for u in urls:
        if u.item_id in pending:
            continue
        dispute = NoticeDispute(
            notice_id=notice.id, item_id=u.item_id, reason=reason, opened_at=now
        )
        session.add(dispute)
        created.append(dispute)
    session.flush()
    if created:
        details = {
            "serial": notice.serial,
            "disputes": [d.id for d in created],
            "items": [d.item_id for d in created],
            "reason": reason,
        }
        record(session, Event(actor, "notice.disputed", "notice", notice.id, details))
    return created


def _lead(session: Session, username: str) -> User:
    user = session.execute(select(User).where(User.username == username)).scalar()
    if user is None or not user.active:
        raise UsageError(f"--lead {username[:64]!r}: no such active user")
    if user.role not in ("lead", "admin"):
        raise UsageError(f"--lead {username[:64]!r}: only a lead re-assesses a dispute")
    return user


def original_deciders(session: Session, item: ReviewItem) -> set[int]:
    """Every person who decided or countersigned the item's confirmation."""
    people = {uid for uid in (item.decided_by, item.countersigned_by) if uid is not None}
    rows = session.execute(
        select(Decision.user_id).where(
            Decision.item_id == item.id, Decision.action.in_(("confirm", "countersign"))
        )
    )
    return people | {uid for (uid,) in rows}


@dataclass(frozen=True)
class Resolution:
    dispute: NoticeDispute
    closed: list[str]  # serials of notices the withdrawal left empty


def _withdraw(session: Session, item: ReviewItem, lead: User, now: datetime) -> list[str]:
    urls = (
        session.execute(
            select(NoticeUrl).where(NoticeUrl.item_id == item.id, NoticeUrl.withdrawn_at.is_(None))
        )
        .scalars()
        .all()
    )
    for u in urls:
        u.withdrawn_at, u.open_item_id = now, None
    session.flush()
    closed = []
    for notice_id in sorted({u.notice_id for u in urls}):
        notice = session.get(Notice, notice_id)
        if notice is None or notice.status not in OPEN_NOTICE_STATUSES:
            continue
        left = session.execute(
            select(NoticeUrl.id).where(
                NoticeUrl.notice_id == notice_id,
                NoticeUrl.removed_at.is_(None),
                NoticeUrl.withdrawn_at.is_(None),
            )
        ).first()
        if left is None:
            notice.status, notice.closed_at = "closed", now
            session.execute(
                update(NoticeUrl).where(NoticeUrl.notice_id == notice_id).values(open_item_id=None)
            )
            closed.append(notice.serial)
    if item.status == "confirmed":
        item.status = "rejected"
    item.version, item.updated_at = item.version + 1, now
    session.add(
        Decision(
            item_id=item.id,
            user_id=lead.id,
            action="withdraw",
            category=item.category,
            notes="dispute withdrawn",
            item_version=item.version,
            created_at=now,
        )
    )
    return closed


def resolve_dispute(
    session: Session,
    dispute_id: int,
    outcome: str,
    lead_name: str,
    now: datetime,
    notes: str | None = None,
) -> Resolution:
    """A lead's re-assessment of a dispute: `upheld` or `withdrawn` (four-eyes enforced)."""
    if outcome not in DISPUTE_OUTCOMES:
        raise UsageError(f"--outcome {outcome!r}: must be upheld or withdrawn")
    dispute = session.get(NoticeDispute, dispute_id, with_for_update=True)
    if dispute is None:
        raise UsageError(f"no dispute {dispute_id}")
    if dispute.outcome is not None:
        raise UsageError(f"dispute {dispute_id} was already resolved ({dispute.outcome})")
    lead = _lead(session, lead_name)
    item = session.get(ReviewItem, dispute.item_id, with_for_update=True)
    assert item is not None
    if lead.id in original_deciders(session, item):
        raise UsageError(
            f"dispute {dispute_id}: {lead.username} took part in the original decision; "
            "another lead must re-assess it (four-eyes)"
        )
    dispute.outcome, dispute.resolved_at, dispute.resolved_by = outcome, now, lead.id
    dispute.resolution_notes = (notes or "").strip()[:REASON_LIMIT] or None
    closed = _withdraw(session, item, lead, now) if outcome == "withdrawn" else []
    notice = session.get(Notice, dispute.notice_id)
    details = {
        "dispute": dispute.id,
        "serial": notice.serial if notice else None,
        "item": item.id,
        "notices_closed": closed,
    }
    record(session, Event(lead.username, f"dispute.{outcome}", "review_item", item.id, details))
    return Resolution(dispute, closed)


def open_disputes(session: Session) -> list[tuple[NoticeDispute, str, str]]:
    """Undecided disputes, oldest first, with the notice serial and the URL."""
    rows = session.execute(
        select(NoticeDispute, Notice.serial, NoticeUrl.url)
        .join(Notice, Notice.id == NoticeDispute.notice_id)
        .join(
            NoticeUrl,
            (NoticeUrl.notice_id == NoticeDispute.notice_id)
            & (NoticeUrl.item_id == NoticeDispute.item_id),
        )
        .where(NoticeDispute.outcome.is_(None))
        .order_by(NoticeDispute.id)
    )
    return [(d, serial, url) for d, serial, url in rows]
