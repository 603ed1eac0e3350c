"""`notices build | export | mark-sent | due | escalate-to`: thin layers over crawler.notices.build."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from crawler.cli._common import database, info, output, settings
from crawler.config import Settings
from crawler.db.audit import Event, record
from crawler.db.models import Notice, NoticeUrl
from crawler.db.types import utcnow
from crawler.errors import UsageError
from crawler.net.sanitize import clean_text
from crawler.notices.build import (
    build_notices,
    mark_sent,
    outbox,
    release,
    set_escalation_contact,
    waiting,
)
from crawler.notices.disputes import open_dispute, open_disputes, resolve_dispute
from crawler.notices.notice_mail import (
    check_templates,
    eml_bytes,
    load_notices,
    mbox_bytes,
    notice_record,
    render_all,
    render_message,
)
from crawler.notices.routing import load_routing
from crawler.notices.urgent import refer_urgent

notices_app = typer.Typer(help="Takedown notices to abuse contacts.", no_args_is_help=True)
_SERIAL = re.compile(r"TD-\d{4}-\d{6,}")
ACTOR = "cli"
Loaded = list[tuple[Notice, list[NoticeUrl]]]


def _show(text: str | None, limit: int = 160) -> str:
    """Crawled or RDAP text made safe for one terminal line (E-10)."""
    return clean_text(text, limit) or "-"


@notices_app.command("build")
def notices_build() -> None:
    """One draft notice per abuse contact and route for confirmed URLs in no open notice."""
    cfg = settings()
    routing = load_routing(cfg)  # a malformed routing file or template: exit 2, nothing written
    check_templates(cfg)
    with database(cfg=cfg) as db, db.session() as session:
        result = build_notices(session, cfg, utcnow(), actor=ACTOR, routing=routing)
        for n in result.created:  # a template failing on real data rolls the build back
            urls = session.execute(select(NoticeUrl).where(NoticeUrl.notice_id == n.id))
            render_message(n, list(urls.scalars()), cfg, utcnow())
        due = len(outbox(session, cfg, utcnow()))
        for n in result.escalated:
            upstream = n.escalation_contact or "unknown: set it with `notices escalate-to`"
            info(f"escalated {n.serial} (upstream contact {upstream})")
        for n in result.created:
            flags = "".join(
                [
                    " [guessed contact]" if n.contact_is_guess else "",
                    " [CDN-fronted]" if n.cdn_fronted else "",
                    f" [route {n.route}]" if n.route != "host" else "",
                    " [held]" if n.status == "held" else "",
                ]
            )
            info(f"created {n.serial} to {_show(n.recipient or n.abuse_contact)}{flags}")
    for w in result.waiting:
        info(f"waiting: item {w.item_id} {_show(w.url)}: {w.reason}")
    info(
        f"{len(result.created)} notices created, {len(result.escalated)} escalated, "
        f"{len(result.waiting)} confirmed items waiting for a contact, {due} notices due to send"
    )


@notices_app.command("due")
def notices_due() -> None:
    """Notices to send now: drafts, escalations and re-notices; then what waits, and why."""
    cfg = settings()
    with database(cfg=cfg) as db, db.read_session() as session:
        for notice, reason in outbox(session, cfg, utcnow()):
            to = notice.recipient or notice.abuse_contact  # where it goes (route)
            print(f"{notice.serial}\t{reason}\t{notice.status}\t{_show(to)}")
        # What cannot be sent: no valid recipient (one rule: crawler.hosting.abuse_address).
        waits = waiting(session)
        for notice, why in waits.notices:
            print(f"{notice.serial}\twaiting\t{notice.status}\t{_show(why)}")
        for w in waits.items:
            print(f"item {w.item_id}\twaiting\tconfirmed\t{_show(w.url)}: {_show(w.reason)}")


def _write_json(loaded: Loaded, path: str | None) -> bytes:
    records = [notice_record(n, urls) for n, urls in loaded]
    text = json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    with output(path) as handle:
        handle.write(text)
    return text.encode()


def _write_eml(loaded: Loaded, path: str | None, cfg: Settings) -> bytes:
    rendered = render_all(loaded, cfg, utcnow())
    if path in (None, "-"):
        data = mbox_bytes(rendered, utcnow())
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return data
    folder = Path(str(path))
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: --output for eml must be a folder (one .eml per notice)")
    folder.mkdir(parents=True, exist_ok=True)
    digest = bytearray()
    for item in rendered:
        if not _SERIAL.fullmatch(item.serial):
            raise UsageError(f"notice serial {item.serial[:40]!r} is not TD-YYYY-NNNNNN")
        data = eml_bytes(item.message)
        tmp = folder / f".{item.serial}.eml.partial"
        tmp.write_bytes(data)
        tmp.replace(folder / f"{item.serial}.eml")
        digest += data
    return bytes(digest)


@notices_app.command("export")
def notices_export(
    fmt: Annotated[str, typer.Option("--format", help="json or eml")],
    output_path: Annotated[
        str | None, typer.Option("--output", help="file (json) or folder (eml); - for stdout")
    ] = None,
    which: Annotated[
        str | None,
        typer.Option(help="all | open | outbox (default: all for json, outbox for eml)"),
    ] = None,
) -> None:
    """Write notices as the contract's JSON, or as one RFC 5322 .eml per notice."""
    if fmt not in ("json", "eml"):
        raise UsageError(f"--format {fmt!r}: must be json or eml")
    cfg = settings()
    chosen = which or ("all" if fmt == "json" else "outbox")
    with database(cfg=cfg) as db:
        with db.read_session() as session:
            loaded = load_notices(session, cfg, utcnow(), chosen)
            data = (
                _write_json(loaded, output_path)
                if fmt == "json"
                else _write_eml(loaded, output_path, cfg)
            )
        details = {
            "format": fmt,
            "which": chosen,
            "notices": len(loaded),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        with db.session() as session:
            record(session, Event(ACTOR, "notices.export", "notice", None, details))
    info(f"{len(loaded)} notices exported as {fmt} ({chosen})")


@notices_app.command("mark-sent")
def notices_mark_sent(
    refs: Annotated[list[str], typer.Argument(help="notice ids or serials")],
) -> None:
    """Record that notices were sent; repeating it changes nothing until the next send is due."""
    cfg = settings()
    with database(cfg=cfg) as db, db.session() as session:
        outcomes = mark_sent(session, refs, cfg, utcnow(), actor=ACTOR)
    for o in outcomes:
        info(f"{o.serial}: {'marked sent (' + o.reason + ')' if o.counted else o.reason}")


@notices_app.command("escalate-to")
def notices_escalate_to(
    ref: Annotated[str, typer.Argument(help="notice id or serial")],
    address: Annotated[str, typer.Argument(help="the upstream network's abuse address")],
) -> None:
    """Set the upstream contact an escalated notice goes to."""
    with database() as db, db.session() as session:
        notice = set_escalation_contact(session, ref, address, actor=ACTOR)
    info(f"{notice.serial}: escalations go to {notice.escalation_contact}")


@notices_app.command("release")
def notices_release(
    ref: Annotated[str, typer.Argument(help="notice id or serial of a held notice")],
) -> None:
    """Release a notice held for law enforcement: it becomes a draft, due to send."""
    with database() as db, db.session() as session:
        notice = release(session, ref, utcnow(), actor=ACTOR)
    info(f"{notice.serial}: released, now a draft to {_show(notice.recipient)}")


@notices_app.command("dispute")
def notices_dispute(
    ref: Annotated[str, typer.Argument(help="notice serial or id")],
    reason: Annotated[str, typer.Option("--reason", help="the provider's reason, as given")],
    url: Annotated[str | None, typer.Option("--url", help="the one URL disputed")] = None,
) -> None:
    """Record a provider's dispute: a lead who did not decide the URL re-assesses it."""
    with database() as db, db.session() as session:
        created = open_dispute(session, ref, reason, utcnow(), actor=ACTOR, url=url)
        shown = [(d.id, d.item_id) for d in created]
    for dispute_id, item_id in shown:
        info(f"dispute {dispute_id} opened (item {item_id})")
    info(f"{len(shown)} disputes opened")


@notices_app.command("disputes")
def notices_disputes() -> None:
    """Disputes waiting for a lead's re-assessment."""
    with database() as db, db.read_session() as session:
        for d, serial, url in open_disputes(session):
            opened = d.opened_at.isoformat()
            print(f"{d.id}\t{serial}\titem {d.item_id}\t{opened}\t{_show(url)}\t{_show(d.reason)}")


@notices_app.command("resolve-dispute")
def notices_resolve_dispute(
    dispute_id: Annotated[int, typer.Argument(help="dispute id (see `notices disputes`)")],
    outcome: Annotated[str, typer.Option("--outcome", help="upheld or withdrawn")],
    lead: Annotated[str, typer.Option("--lead", help="the re-assessing lead's user name")],
    notes: Annotated[str | None, typer.Option("--notes", help="why")] = None,
) -> None:
    """A second lead's re-assessment; `withdrawn` takes the URL out of every open notice."""
    with database() as db, db.session() as session:
        done = resolve_dispute(session, dispute_id, outcome, lead, utcnow(), notes)
        closed = done.closed
    info(f"dispute {dispute_id}: {outcome}" + (f"; closed {', '.join(closed)}" if closed else ""))


@notices_app.command("urgent")
def notices_urgent(
    item_id: Annotated[int, typer.Argument(help="the review item a child may be at risk in")],
    reason: Annotated[str | None, typer.Option("--reason", help="why it is urgent")] = None,
) -> None:
    """Refer an item at once to TAKEDOWN_URGENT_CONTACT (law enforcement), first in the outbox."""
    cfg = settings()
    check_templates(cfg)
    with database(cfg=cfg) as db, db.session() as session:
        notice = refer_urgent(session, item_id, cfg, utcnow(), actor=ACTOR, reason=reason)
        urls = session.execute(select(NoticeUrl).where(NoticeUrl.notice_id == notice.id))
        render_message(notice, list(urls.scalars()), cfg, utcnow())
        serial, to = notice.serial, notice.recipient
    info(f"urgent referral {serial} to {to}: due now (`notices export --format eml`)")
