"""Urgent referrals: a decision marked urgent (a child may be at risk now) goes at once to
the law-enforcement contact `TAKEDOWN_URGENT_CONTACT`, as a notice of kind `urgent`.

The referral is its own notice: it is first in the outbox (`notices due`, the eml
export), is sent once (no re-notices, no escalation) and does not hold the URL, so the
same URL still gets its ordinary takedown notice from `notices build`. One referral per
item; each is audited (`notice.urgent`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.config import Settings
from crawler.db.audit import Event, record
from crawler.db.models import Notice, NoticeUrl, ReviewItem
from crawler.errors import UsageError
from crawler.notices.build import contact_for, next_serial, valid_address

REFERABLE = ("pending", "escalated", "confirmed")


def refer_urgent(
    session: Session,
    item_id: int,
    cfg: Settings,
    now: datetime,
    actor: str = "system",
    reason: str | None = None,
) -> Notice:
    """Create the urgent referral of item `item_id`, due at once."""
    contact = (cfg.urgent_contact or "").strip().lower()
    if not valid_address(contact):
        raise UsageError("TAKEDOWN_URGENT_CONTACT: set it to the plain address referrals go to")
    item = session.get(ReviewItem, item_id, with_for_update=True)
    if item is None:
        raise UsageError(f"no review item {item_id}")
    if item.status not in REFERABLE:
        raise UsageError(f"item {item_id} is {item.status}: only an open or confirmed item")
    already = session.execute(
        select(Notice.serial)
        .join(NoticeUrl, NoticeUrl.notice_id == Notice.id)
        .where(NoticeUrl.item_id == item_id, Notice.kind == "urgent")
    ).scalar()
    if already:
        raise UsageError(f"item {item_id} was already referred ({already})")
    page, host = item.page, item.page.host
    found = contact_for(host)
    notice = Notice(
        serial=next_serial(session, now.year),
        kind="urgent",
        route="urgent",
        abuse_contact=found.address if found else "",
        contact_is_guess=found.is_guess if found else False,
        recipient=contact,
        asn=host.asn if host else None,
        as_org=host.as_org if host else None,
        country=host.country if host else None,
        status="draft",
        created_at=now,
        operator_name=cfg.operator_name,
        operator_contact=cfg.operator_contact,
        legal_basis=cfg.notice_legal_basis,
        appeal=cfg.notice_appeal,
        trusted_flagger=cfg.trusted_flagger,
        trusted_flagger_authority=cfg.trusted_flagger_authority if cfg.trusted_flagger else None,
    )
    session.add(notice)
    session.flush()
    session.add(
        NoticeUrl(
            notice_id=notice.id,
            item_id=item.id,
            url=page.url,
            category=item.category,
            first_seen=page.first_seen,
            ip=host.ip if host and host.ip else None,
            legal_basis=cfg.notice_legal_basis,
        )
    )
    session.flush()
    details = {"serial": notice.serial, "item": item.id, "to": contact, "reason": reason}
    record(session, Event(actor, "notice.urgent", "notice", notice.id, details))
    return notice
