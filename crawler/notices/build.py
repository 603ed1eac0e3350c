"""Takedown notices: build them from confirmed items, and move them through their life.

Life of a notice (every transition is an audit event):

    draft --mark-sent--> sent --(escalate_days, URLs still up)--> escalated
      \\                  \\                                         \\
       `------------------`-------- every URL removed ------------`--> removed

- `build_notices` groups confirmed items that are in no open notice (draft, sent,
  escalated) by abuse contact and creates one draft per contact, in one transaction.
  The contact is the RDAP abuse contact of the hosting network; failing that,
  `abuse@<registered domain>` (RFC 2142), marked as a guess. An item with neither stays
  confirmed and un-noticed and is returned as *waiting*, so it is never silently dropped.
- Re-notices are not a status: a sent or escalated notice whose URLs are still up is
  *due* again `renotice_hours` after it was last sent (`outbox`). `mark_sent` counts a
  send only when one is due, which makes it idempotent.
- `advance` escalates sent notices older than `escalate_days` whose URLs are still up.
  The upstream contact is not known to the pipeline: `escalation_contact` stays NULL (a
  placeholder) until an operator sets it with `set_escalation_contact`.
- `mark_removed` (called by the recheck) records a URL's removal and closes every notice
  whose URLs are all gone.

A URL sits in at most one open notice: `NoticeUrl.open_item_id` (unique) holds the item
id while its notice is open. Builds are serialised (PostgreSQL advisory lock; SQLite's
`BEGIN IMMEDIATE`), and serials come from an atomic per-year counter, so concurrent
builders never share a serial or a URL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import exists, select, text, update
from sqlalchemy.orm import Session

from crawler.config import Settings
from crawler.db.audit import Event, record
from crawler.db.models import Host, Notice, NoticeSerial, NoticeUrl, Page, ReviewItem
from crawler.db.upsert import insert_for
from crawler.errors import UsageError
from crawler.hosting.abuse_address import address_problem, guess_for, valid_abuse_address
from crawler.names import row_id

if TYPE_CHECKING:
    from crawler.notices.routing import Route, Routing

OPEN_NOTICE_STATUSES = ("draft", "sent", "escalated", "held")
_BUILD_LOCK_KEY = 0x7464_6E6F  # "tdno": one advisory lock for every notice build

# Autonomous systems of the large CDNs and reverse proxies: a host there is "CDN-fronted",
# so the abuse contact is the CDN's, which can forward the notice or name the origin.
CDN_ASNS: dict[int, str] = {
    13335: "Cloudflare",
    209242: "Cloudflare",
    20940: "Akamai",
    16625: "Akamai",
    54113: "Fastly",
    60068: "CDN77",
    200325: "BunnyCDN",
    15133: "Edgecast",
    22822: "Edgio (Limelight)",
    33438: "StackPath",
}
CDN_ORG_WORDS = ("cloudflare", "akamai", "fastly", "cdn77", "bunnyway", "edgecast", "limelight")

# The one rule of what an abuse address is (`crawler.hosting.abuse_address`); the old name stays.
valid_address = valid_abuse_address


@dataclass(frozen=True)
class Contact:
    address: str
    is_guess: bool


def contact_for(host: Host | None) -> Contact | None:
    """The RDAP abuse contact of the host's network, else the RFC 2142 guess, else None."""
    found = contact_or_reason(host)
    return found if isinstance(found, Contact) else None


def contact_or_reason(host: Host | None) -> Contact | str:
    """The host's usable abuse contact, or why it has none (for *waiting* items)."""
    if host is None:
        return "the page has no recorded host"
    known = (host.abuse_contact or "").strip().lower()
    if valid_abuse_address(known):
        return Contact(known, host.abuse_contact_source == "guess")
    guess = guess_for(host.registered_domain)
    if guess is not None:
        return Contact(guess, True)
    stored = (
        f"abuse contact {known[:80]!r} refused ({address_problem(known)})"
        if known
        else ("no abuse contact from RDAP")
    )
    domain = (host.registered_domain or host.host or "").strip().lower()
    if not domain:
        return f"no valid recipient: {stored}, and no domain to guess one from"
    why = address_problem(f"abuse@{domain}") or "not usable"
    return f"no valid recipient: {stored}, and no guess for {domain[:80]!r} ({why})"


def is_cdn(host: Host | None) -> bool:
    if host is None:
        return False
    org = (host.as_org or "").lower()
    return host.asn in CDN_ASNS or any(word in org for word in CDN_ORG_WORDS)


@dataclass(frozen=True)
class Waiting:
    """A confirmed item that cannot be noticed yet, and why."""

    item_id: int
    url: str
    reason: str


@dataclass
class BuildResult:
    created: list[Notice] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    escalated: list[Notice] = field(default_factory=list)


@dataclass(frozen=True)
class _Candidate:
    item: ReviewItem
    page: Page
    host: Host | None


def _serialise_builds(session: Session) -> None:
    # SQLite write transactions are already exclusive (BEGIN IMMEDIATE).
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BUILD_LOCK_KEY})


def _unnoticed(session: Session) -> list[_Candidate]:
    in_open_notice = exists().where(NoticeUrl.open_item_id == ReviewItem.id)
    rows = session.execute(
        select(ReviewItem, Page, Host)
        .join(Page, ReviewItem.page_id == Page.id)
        .outerjoin(Host, Page.host_id == Host.id)
        .where(ReviewItem.status == "confirmed", ~in_open_notice)
        .order_by(ReviewItem.id)
    )
    return [_Candidate(item, page, host) for item, page, host in rows]


def _group(
    candidates: Iterable[_Candidate],
) -> tuple[dict[str, list[tuple[_Candidate, Contact]]], list[Waiting]]:
    groups: dict[str, list[tuple[_Candidate, Contact]]] = {}
    waiting: list[Waiting] = []
    for cand in candidates:
        contact = contact_or_reason(cand.host)
        if isinstance(contact, str):
            waiting.append(Waiting(cand.item.id, cand.page.url, contact))
        else:
            groups.setdefault(contact.address, []).append((cand, contact))
    return groups, waiting


def next_serial(session: Session, year: int) -> str:
    """`TD-YYYY-NNNNNN`: one atomic upsert per serial, so none is ever handed out twice."""
    stmt = insert_for(session, NoticeSerial).values(year=year, last_value=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[NoticeSerial.year], set_={"last_value": NoticeSerial.last_value + 1}
    ).returning(NoticeSerial.last_value)
    number = int(session.execute(stmt).scalar_one())
    return f"TD-{year:04d}-{number:06d}"


def _most_common(values: Iterable[object]) -> object:
    counted = Counter(v for v in values if v is not None)
    return counted.most_common(1)[0][0] if counted else None


def _new_notice(
    session: Session,
    address: str,
    members: Sequence[tuple[_Candidate, Contact]],
    cfg: Settings,
    now: datetime,
) -> Notice:
    hosts = [cand.host for cand, _ in members]
    asn = _most_common(h.asn for h in hosts if h)
    network = next((h for h in hosts if h and h.asn == asn), None)
    notice = Notice(
        serial=next_serial(session, now.year),
        abuse_contact=address,
        contact_is_guess=all(contact.is_guess for _, contact in members),
        asn=asn,
        as_org=network.as_org if network else None,
        country=_most_common(h.country for h in hosts if h),
        status="draft",
        created_at=now,
        cdn_fronted=any(is_cdn(h) for h in hosts),
        operator_name=cfg.operator_name,
        operator_contact=cfg.operator_contact,
        legal_basis=cfg.notice_legal_basis,
        appeal=cfg.notice_appeal,
    )
    session.add(notice)
    session.flush()
    return notice


def _add_urls(
    session: Session,
    notice: Notice,
    members: Sequence[tuple[_Candidate, Contact]],
    routing: Routing | None = None,
) -> None:
    for cand, _ in members:
        basis = notice.legal_basis
        if routing is not None:
            basis = routing.basis_for(cand.item.category, notice.legal_basis or "")
        session.add(
            NoticeUrl(
                notice_id=notice.id,
                item_id=cand.item.id,
                url=cand.page.url,
                category=cand.item.category,
                first_seen=cand.page.first_seen,
                ip=cand.host.ip if cand.host and cand.host.ip else None,
                open_item_id=cand.item.id,
                legal_basis=basis,
            )
        )
    session.flush()


def _by_route(
    groups: dict[str, list[tuple[_Candidate, Contact]]], routing: Routing
) -> dict[tuple[str, Route], list[tuple[_Candidate, Contact]]]:
    """Split each contact's group by the route of its hosts' countries."""
    out: dict[tuple[str, Route], list[tuple[_Candidate, Contact]]] = {}
    for address, members in groups.items():
        for cand, contact in members:
            route = routing.route_for(cand.host.country if cand.host else None)
            out.setdefault((address, route), []).append((cand, contact))
    return out


def _apply_route(notice: Notice, address: str, route: Route, cfg: Settings, now: datetime) -> None:
    notice.route = route.kind
    notice.recipient = route.email if route.kind == "hotline" and route.email else address
    notice.hotline_name = route.name if route.kind == "hotline" else None
    notice.trusted_flagger = cfg.trusted_flagger
    notice.trusted_flagger_authority = (
        cfg.trusted_flagger_authority if cfg.trusted_flagger else None
    )
    if route.kind == "hold":
        notice.status, notice.held_at = "held", now


def build_notices(
    session: Session,
    cfg: Settings,
    now: datetime,
    actor: str = "system",
    routing: Routing | None = None,
) -> BuildResult:
    """Escalate what is due, then one draft per abuse contact and route for un-noticed items.

    Each item's route comes from its host's country (`routing`, default: every notice to
    the host); a `hold` notice is created `held`. Runs inside the caller's transaction: a
    failure part-way leaves nothing behind. Running it again with nothing newly confirmed
    creates nothing.
    """
    from crawler.notices.routing import Routing

    routing = routing or Routing()
    _serialise_builds(session)
    result = BuildResult(escalated=advance(session, cfg, now, actor))
    groups, result.waiting = _group(_unnoticed(session))
    routed = _by_route(groups, routing)
    for address, route in sorted(routed, key=lambda k: (k[0], k[1].kind, k[1].email or "")):
        members = routed[(address, route)]
        notice = _new_notice(session, address, members, cfg, now)
        _apply_route(notice, address, route, cfg, now)
        _add_urls(session, notice, members, routing)
        details = {
            "serial": notice.serial,
            "contact": address,
            "urls": len(members),
            "guess": notice.contact_is_guess,
            "cdn": notice.cdn_fronted,
            "route": notice.route,
            "recipient": notice.recipient,
            "status": notice.status,
        }
        record(session, Event(actor, "notice.created", "notice", notice.id, details))
        result.created.append(notice)
    return result


# --- lifecycle ---------------------------------------------------------------------------


def send_reason(notice: Notice, now: datetime, renotice_hours: int) -> str | None:
    """Why `notice` should be sent now (first, escalation, re-notice), or None."""
    if notice.status == "draft":
        return "first"
    if notice.kind == "urgent":  # a referral is sent once; law enforcement takes it from there
        return None
    if notice.status not in ("sent", "escalated") or notice.last_sent_at is None:
        return None
    if (
        notice.status == "escalated"
        and notice.escalated_at
        and notice.last_sent_at < notice.escalated_at
    ):
        return "escalation"
    if now >= notice.last_sent_at + timedelta(hours=renotice_hours):
        return "re-notice"
    return None


def find_notices(session: Session, refs: Sequence[str]) -> list[Notice]:
    """Notices by id or serial; UsageError naming every reference that matches none."""
    found: list[Notice] = []
    missing: list[str] = []
    for ref in refs:
        number = row_id(ref)
        cond = Notice.id == number if number is not None else Notice.serial == ref.strip().upper()
        notice = session.execute(select(Notice).where(cond).with_for_update()).scalar()
        if notice is None:
            missing.append(ref)
        else:
            found.append(notice)
    if missing:
        raise UsageError(f"no such notice: {', '.join(repr(m[:40]) for m in missing)}")
    return found


@dataclass(frozen=True)
class SendOutcome:
    serial: str
    counted: bool
    reason: str  # first | escalation | re-notice, or why nothing changed


def mark_sent(
    session: Session, refs: Sequence[str], cfg: Settings, now: datetime, actor: str = "system"
) -> list[SendOutcome]:
    """Record that the notices were sent. A send that was not due changes nothing."""
    outcomes = []
    for notice in find_notices(session, refs):
        reason = send_reason(notice, now, cfg.renotice_hours)
        if reason is None:
            last = notice.last_sent_at.isoformat() if notice.last_sent_at else "never"
            outcomes.append(
                SendOutcome(notice.serial, False, f"not due ({notice.status}, last sent {last})")
            )
            continue
        notice.sent_at = notice.sent_at or now
        notice.last_sent_at, notice.send_count = now, notice.send_count + 1
        notice.status = "sent" if notice.status == "draft" else notice.status
        details = {"serial": notice.serial, "reason": reason, "send_count": notice.send_count}
        record(session, Event(actor, "notice.sent", "notice", notice.id, details))
        outcomes.append(SendOutcome(notice.serial, True, reason))
    return outcomes


def _urls_up(session: Session, notice_id: int) -> bool:
    up = select(NoticeUrl.id).where(
        NoticeUrl.notice_id == notice_id,
        NoticeUrl.removed_at.is_(None),
        NoticeUrl.withdrawn_at.is_(None),
    )
    return session.execute(up.limit(1)).first() is not None


def advance(session: Session, cfg: Settings, now: datetime, actor: str = "system") -> list[Notice]:
    """Escalate sent notices older than `escalate_days` whose URLs are still up."""
    cutoff = now - timedelta(days=cfg.escalate_days)
    stale = session.execute(
        select(Notice)
        .where(
            Notice.status == "sent",
            Notice.sent_at <= cutoff,
            Notice.kind != "urgent",  # a referral to law enforcement is sent once
            Notice.route != "hotline",  # the partner hotline follows up in its country
        )
        .order_by(Notice.id)
    ).scalars()
    escalated = []
    for notice in stale:
        if not _urls_up(session, notice.id):
            continue
        notice.status, notice.escalated_at = "escalated", now
        details = {
            "serial": notice.serial,
            "after_days": cfg.escalate_days,
            "upstream_contact": notice.escalation_contact,
        }
        record(session, Event(actor, "notice.escalated", "notice", notice.id, details))
        escalated.append(notice)
    return escalated


def release(session: Session, ref: str, now: datetime, actor: str = "system") -> Notice:
    """Release a held notice (law enforcement agreed): it becomes a draft, due to send."""
    (notice,) = find_notices(session, [ref])
    if notice.status != "held":
        raise UsageError(f"{notice.serial} is {notice.status}, not held: nothing to release")
    notice.status, notice.released_at = "draft", now
    held_hours = round((now - notice.held_at).total_seconds() / 3600, 2) if notice.held_at else None
    details = {"serial": notice.serial, "held_hours": held_hours, "recipient": notice.recipient}
    record(session, Event(actor, "notice.released", "notice", notice.id, details))
    return notice


def hold_age(notice: Notice, now: datetime) -> str:
    """How long a held notice has waited, as `3d 4h` (or `5h`)."""
    if notice.held_at is None:
        return "-"
    hours = max(int((now - notice.held_at).total_seconds() // 3600), 0)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h"


def set_escalation_contact(
    session: Session, ref: str, address: str, actor: str = "system"
) -> Notice:
    """Name the upstream network's contact of an escalated (or any open) notice."""
    address = address.strip().lower()
    if not valid_address(address):
        raise UsageError(f"{address[:80]!r} is not a plain e-mail address")
    (notice,) = find_notices(session, [ref])
    if notice.status not in OPEN_NOTICE_STATUSES:
        raise UsageError(f"{notice.serial} is {notice.status}; only open notices can be escalated")
    notice.escalation_contact = address
    details = {"serial": notice.serial, "upstream_contact": address}
    record(session, Event(actor, "notice.escalation_contact", "notice", notice.id, details))
    return notice


@dataclass(frozen=True)
class Removal:
    item_id: int
    first_time: bool  # False when the item had already been recorded as removed
    closed: list[str]  # serials of notices this removal completed


def _close_if_done(session: Session, notice: Notice, when: datetime, actor: str) -> bool:
    if notice.status not in OPEN_NOTICE_STATUSES or _urls_up(session, notice.id):
        return False
    notice.status, notice.closed_at = "removed", when
    session.execute(
        update(NoticeUrl).where(NoticeUrl.notice_id == notice.id).values(open_item_id=None)
    )
    details = {"serial": notice.serial, "status_before": "open"}
    record(session, Event(actor, "notice.removed", "notice", notice.id, details))
    return True


def mark_removed(session: Session, item_id: int, when: datetime, actor: str = "recheck") -> Removal:
    """Record that item `item_id`'s URL is gone as of `when` (timezone-aware UTC).

    Sets `ReviewItem.removed_at` (first removal wins) and status `removed` (if it was
    `confirmed`), `NoticeUrl.removed_at` on each of its notice URLs, and closes as
    `removed` every open notice whose URLs are now all gone. Idempotent; runs in the
    caller's transaction. Raises UsageError for an unknown item.
    """
    item = session.get(ReviewItem, item_id, with_for_update=True)
    if item is None:
        raise UsageError(f"no review item {item_id}")
    first = item.removed_at is None
    if first:
        item.removed_at, item.updated_at = when, when
    if item.status == "confirmed":
        item.status = "removed"
    urls = session.execute(select(NoticeUrl).where(NoticeUrl.item_id == item_id)).scalars().all()
    for url in urls:
        url.removed_at = url.removed_at or when
    session.flush()
    notices = [session.get(Notice, nid) for nid in sorted({u.notice_id for u in urls})]
    closed = [n.serial for n in notices if n and _close_if_done(session, n, when, actor)]
    if first:
        details = {"removed_at": when.isoformat(), "notices_closed": closed}
        record(session, Event(actor, "item.removed", "review_item", item_id, details))
    return Removal(item_id, first, closed)


def outbox(session: Session, cfg: Settings, now: datetime) -> list[tuple[Notice, str]]:
    """Open notices that should be sent now, with the reason: urgent referrals first, then
    oldest first."""
    rows = session.execute(
        select(Notice).where(Notice.status.in_(OPEN_NOTICE_STATUSES)).order_by(Notice.id)
    ).scalars()
    due = [(n, send_reason(n, now, cfg.renotice_hours)) for n in rows]
    # A notice with no valid recipient waits (`waiting`) instead of going nowhere.
    urgent_first = sorted(due, key=lambda pair: pair[0].kind != "urgent")
    return [
        (n, reason) for n, reason in urgent_first if reason is not None and not recipient_problem(n)
    ]


def recipient_problem(notice: Notice) -> str | None:
    """Why the notice's recipient is no usable abuse address; None when it is one."""
    escalated = notice.status == "escalated" and notice.escalation_contact
    to = notice.escalation_contact if escalated else (notice.recipient or notice.abuse_contact)
    problem = address_problem(to)
    return None if problem is None else f"no valid recipient: {str(to)[:80]!r} ({problem})"


@dataclass(frozen=True)
class Waits:
    """What waits for a valid recipient: confirmed items no notice can be built for, and
    open notices whose recipient is no usable address, each with the reason."""

    items: list[Waiting]
    notices: list[tuple[Notice, str]]


def waiting(session: Session) -> Waits:
    """Everything that waits for a valid recipient (`notices due`, the app's /notices)."""
    items = _group(_unnoticed(session))[1]
    rows = session.execute(
        select(Notice).where(Notice.status.in_(OPEN_NOTICE_STATUSES)).order_by(Notice.id)
    ).scalars()
    held = [(n, why) for n in rows if (why := recipient_problem(n)) is not None]
    return Waits(items, held)
