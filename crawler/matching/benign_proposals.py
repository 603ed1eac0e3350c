"""Benign-listing under four eyes (`TAKEDOWN_BENIGN_FOUR_EYES`, docs/review.md).

Without the setting, media an analyst benign-lists on Reject join `analyst-benign` at once
(`crawler.matching.media_decisions.benign_media`). With it, the Reject only records a pending
proposal per media. A second, different person agrees by rejecting a page that shows the
same media (a page is confirmed when any of its media is, so a Reject says none of them
is illegal), or, as a lead, on the review app's proposals page. Only then do the media's
hashes join the list, spread like any benign decision. Proposal and agreement are audited
(`benign.proposed`, `benign.agreed`); the proposer can never agree with themself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crawler.db.audit import Event, record
from crawler.db.models import BenignProposal, Page, ReviewItem, User
from crawler.matching.media_decisions import benign_media


def pending(session: Session, media_ids: Collection[int]) -> list[BenignProposal]:
    if not media_ids:
        return []
    query = (
        select(BenignProposal)
        .where(BenignProposal.media_id.in_(sorted(media_ids)), BenignProposal.agreed_at.is_(None))
        .order_by(BenignProposal.id)
    )
    return list(session.execute(query).scalars())


def propose(
    session: Session,
    media_ids: Collection[int],
    item_id: int,
    user_id: int,
    actor: str,
    list_name: str,
    now: datetime,
) -> list[int]:
    """A pending proposal for each of `media_ids` that has none yet; the media proposed."""
    waiting = {p.media_id for p in pending(session, media_ids)}
    new = sorted(set(media_ids) - waiting)
    for media_id in new:
        session.add(
            BenignProposal(
                media_id=media_id,
                item_id=item_id,
                list_name=list_name,
                proposed_by=user_id,
                created_at=now,
            )
        )
    if new:
        session.flush()
        details = {"list": list_name, "media": new}
        record(session, Event(actor, "benign.proposed", "review_item", item_id, details))
    return new


def agree(
    session: Session,
    proposals: Collection[BenignProposal],
    user_id: int,
    actor: str,
    categories: tuple[str, ...],
    now: datetime,
    item_id: int | None = None,
) -> list[int]:
    """`user_id` agrees with `proposals` (not their own): the media join their list, spread
    at once. One conditional UPDATE per proposal, so two people agreeing at the same time
    add the media once. Returns the media that joined."""
    joined: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    agreed_ids: list[int] = []
    for proposal in proposals:
        if proposal.proposed_by == user_id:
            continue
        done = session.execute(
            update(BenignProposal)
            .where(BenignProposal.id == proposal.id, BenignProposal.agreed_at.is_(None))
            .values(agreed_by=user_id, agreed_at=now)
            .returning(BenignProposal.id)
        ).scalar()
        if done is None:
            continue
        agreed_ids.append(proposal.id)
        joined[(proposal.list_name, proposal.item_id)].append(proposal.media_id)
    media: list[int] = []
    for (list_name, origin), ids in joined.items():
        where = origin if origin is not None else item_id
        benign_media(session, ids, where or 0, categories, actor, list_name)
        media += ids
    if agreed_ids:
        details = {"proposals": agreed_ids, "media": sorted(media), "on_item": item_id}
        record(session, Event(actor, "benign.agreed", "review_item", item_id, details))
    return sorted(media)


@dataclass(frozen=True)
class ProposalRow:
    id: int
    media_id: int
    item_id: int | None
    url: str | None
    list_name: str
    proposed_by: str
    proposed_by_id: int
    created_at: datetime


def waiting_rows(session: Session, limit: int = 200) -> list[ProposalRow]:
    """Pending proposals, oldest first, with the page they were made on (a lead's list)."""
    query = (
        select(
            BenignProposal.id,
            BenignProposal.media_id,
            BenignProposal.item_id,
            Page.url,
            BenignProposal.list_name,
            User.username,
            BenignProposal.proposed_by,
            BenignProposal.created_at,
        )
        .join(User, User.id == BenignProposal.proposed_by)
        .outerjoin(ReviewItem, ReviewItem.id == BenignProposal.item_id)
        .outerjoin(Page, Page.id == ReviewItem.page_id)
        .where(BenignProposal.agreed_at.is_(None))
        .order_by(BenignProposal.id)
        .limit(limit)
    )
    return [ProposalRow(*row) for row in session.execute(query)]
