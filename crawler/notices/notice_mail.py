"""Notices as data: the contract's JSON records and RFC 5322 messages.

E-mail safety (docs/hazards.md E-05): messages are `email.message.EmailMessage` objects under
`email.policy.default`, which refuses CR or LF in any header value, and every address is
checked against a plain `local@domain` pattern first, so an RDAP contact such as
`abuse@x\\r\\nBcc: y` can never add a header. The HTML part comes from an autoescaping
Jinja2 template and shows URLs as text, never as links.

`Message-ID` is `<SERIAL.N@operator-domain>`, N being the number of the send the message
is for (send_count + 1 while one is due, else send_count): exporting twice gives the same
id, and a re-notice is a new message that refers to the first one.
"""

from __future__ import annotations

import email.policy
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
)
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.config import Settings
from crawler.db.models import Notice, NoticeUrl
from crawler.errors import UsageError
from crawler.hosting.abuse_address import valid_abuse_address as valid_address
from crawler.notices.build import OPEN_NOTICE_STATUSES, recipient_problem, send_reason
from crawler.notices.notice_archives import counts_for
from crawler.reporting.exports import iso

WHICH = ("all", "open", "outbox")
TEMPLATES = ("notice.txt.j2", "notice.html.j2")
GOOD_FAITH = (
    "This notice is sent in good faith: the information in it is accurate and complete "
    "to the best of our knowledge."
)
TEXT_LIMIT = 2000  # characters of one crawled or RDAP value in a notice (a 1 MB title stays out)


def load_notices(
    session: Session, cfg: Settings, now: datetime, which: str
) -> list[tuple[Notice, list[NoticeUrl]]]:
    """Notices with their URLs in id order: `all`, `open` ones, or the `outbox` (due now)."""
    if which not in WHICH:
        raise UsageError(f"--which {which!r}: must be one of {', '.join(WHICH)}")
    query = select(Notice).order_by(Notice.id)
    if which != "all":
        query = query.where(Notice.status.in_(OPEN_NOTICE_STATUSES))
    notices = list(session.execute(query).scalars())
    if which == "outbox":
        # As `notices.outbox`: a notice with no valid recipient waits, it is not due.
        notices = [
            n
            for n in notices
            if send_reason(n, now, cfg.renotice_hours) and not recipient_problem(n)
        ]
    urls: dict[int, list[NoticeUrl]] = {n.id: [] for n in notices}
    for chunk in _chunks(list(urls), 500):
        rows = select(NoticeUrl).where(NoticeUrl.notice_id.in_(chunk)).order_by(NoticeUrl.id)
        for row in session.execute(rows).scalars():
            urls[row.notice_id].append(row)
    return [(n, urls[n.id]) for n in notices]


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def recipient(notice: Notice) -> str:
    """The address the notice goes to: the abuse contact, or a partner hotline's."""
    return notice.recipient or notice.abuse_contact


def dispute_text(notice: Notice) -> str:
    appeal = (notice.appeal or "").strip()
    return f"{appeal} Reference: {notice.serial}.".strip()


def sender(notice: Notice) -> dict[str, Any]:
    flagger = notice.trusted_flagger
    return {
        "name": notice.operator_name,
        "contact": notice.operator_contact,
        "trusted_flagger": flagger,
        "trusted_flagger_authority": notice.trusted_flagger_authority if flagger else None,
    }


def notice_record(notice: Notice, urls: Sequence[NoticeUrl]) -> dict[str, Any]:
    """One notice exactly as docs/interface.md's `notices export --format json` shows it.

    Beyond the contract's first-round fields: `route`, `recipient`, the hotline's name,
    hold times, what the notice states (legal basis per URL, good faith, sender, how to
    dispute). URLs withdrawn after a dispute are left out. Each URL names the archives on
    its page with how many matched members each holds (`crawler.notices.notice_archives`).
    """
    archives = counts_for(urls)
    return {
        "id": notice.id,
        "serial": notice.serial,
        "abuse_contact": notice.abuse_contact,
        "asn": notice.asn,
        "as_org": notice.as_org,
        "country": notice.country,
        "status": notice.status,
        "created_at": iso(notice.created_at),
        "sent_at": iso(notice.sent_at),
        "kind": notice.kind,
        "route": notice.route,
        "recipient": recipient(notice),
        "hotline": notice.hotline_name,
        "held_at": iso(notice.held_at),
        "released_at": iso(notice.released_at),
        "legal_basis": notice.legal_basis,
        "good_faith": GOOD_FAITH,
        "sender": sender(notice),
        "dispute": dispute_text(notice),
        "urls": [
            {
                "url": u.url,
                "category": u.category,
                "legal_basis": u.legal_basis or notice.legal_basis,
                "first_seen": iso(u.first_seen),
                "ip": u.ip,
                "removed_at": iso(u.removed_at),
                "archive_members_matched": sum(
                    a.members_matched for a in archives.get(u.item_id, [])
                ),
                "archives": [
                    {"url": a.url, "members_matched": a.members_matched}
                    for a in archives.get(u.item_id, [])
                ],
            }
            for u in urls
            if u.withdrawn_at is None
        ],
    }


# --- e-mail ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    serial: str
    message: EmailMessage


def _loader(cfg: Settings) -> BaseLoader:
    builtin = PackageLoader("crawler", "templates")
    folder = cfg.notice_templates
    if folder is None:
        return builtin
    if not folder.is_dir():
        raise UsageError(f"TAKEDOWN_NOTICE_TEMPLATES: {folder} is not a folder")
    return ChoiceLoader([FileSystemLoader(str(folder)), builtin])


def _environments(cfg: Settings) -> tuple[SandboxedEnvironment, SandboxedEnvironment]:
    """Sandboxed: an operator's template reaches only the plain values it is given, and
    the HTML part autoescapes with no `safe` filter, so crawled text never becomes markup."""
    loader = _loader(cfg)
    html = SandboxedEnvironment(loader=loader, autoescape=True, undefined=StrictUndefined)
    html.filters.pop("safe", None)
    plain = SandboxedEnvironment(loader=loader, autoescape=False, undefined=StrictUndefined)  # noqa: S701 - text/plain part
    return html, plain


def inert(value: object, limit: int = TEXT_LIMIT) -> str:
    """Crawled or RDAP text for a notice: control, bidi and other format characters shown
    as visible `<U+XXXX>`, at most `limit` characters."""
    text = "" if value is None else str(value)
    out = []
    for char in text[:limit]:
        cat = unicodedata.category(char)
        out.append(f"<U+{ord(char):04X}>" if cat.startswith("C") else char)
    return "".join(out) + ("..." if len(text) > limit else "")


def url_text(url: str) -> str:
    """A URL as exact text: control, bidi and space characters percent-encoded (the same
    resource for any client), nothing else changed."""
    out = []
    for char in url:
        if char.isspace() or unicodedata.category(char).startswith("C"):
            out.append("".join(f"%{b:02X}" for b in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def _address(value: str | None, what: str, serial: str) -> str:
    if not valid_address(value):
        raise UsageError(f"{serial}: the {what} {str(value)[:80]!r} is not a plain e-mail address")
    return str(value)


def _domain(notice: Notice) -> str:
    contact = notice.operator_contact or ""
    return contact.rpartition("@")[2] if valid_address(contact) else "takedown.invalid"


def message_id(notice: Notice, send_number: int) -> str:
    return f"<{notice.serial}.{send_number}@{_domain(notice)}>"


def _recipients(notice: Notice, reason: str | None) -> tuple[str, str | None]:
    """(To, Cc): an escalation goes upstream with the original contact in copy."""
    escalated = notice.status == "escalated" and notice.escalation_contact
    if escalated:
        return notice.escalation_contact or "", recipient(notice)
    return recipient(notice), None


def _context(
    notice: Notice, urls: Sequence[NoticeUrl], reason: str | None, number: int, cfg: Settings
) -> dict[str, Any]:
    archives = counts_for(urls)
    rows = [
        {
            "url": url_text(u.url),
            "category": inert(u.category, 64) if u.category else None,
            "legal_basis": u.legal_basis or notice.legal_basis or "",
            "first_seen": iso(u.first_seen),
            "ip": inert(u.ip, 45) if u.ip else None,
            "archives": [
                {"url": url_text(a.url), "members_matched": a.members_matched}
                for a in archives.get(u.item_id, [])
            ],
        }
        for u in urls
        if u.removed_at is None and u.withdrawn_at is None
    ]
    who = sender(notice)
    facts = {
        "serial": notice.serial,
        "status": notice.status,
        "kind": notice.kind,
        "route": notice.route,
        "recipient": recipient(notice),
        "hotline_name": notice.hotline_name,
        "abuse_contact": notice.abuse_contact,
        "contact_is_guess": notice.contact_is_guess,
        "cdn_fronted": notice.cdn_fronted,
        "asn": notice.asn,
        "as_org": inert(notice.as_org, 255) if notice.as_org else None,
        "country": inert(notice.country, 2) if notice.country else None,
        "operator_name": notice.operator_name or "",
        "operator_contact": notice.operator_contact or "",
        "legal_basis": notice.legal_basis or "",
        "appeal": notice.appeal or "",
        "trusted_flagger": who["trusted_flagger"],
        "trusted_flagger_authority": who["trusted_flagger_authority"],
    }
    hotline = notice.route == "hotline"
    greeting = f"Dear colleagues at {notice.hotline_name}," if hotline else "Dear abuse team,"
    if notice.kind == "urgent":
        greeting = "Dear colleagues,"
    return {
        "notice": facts,
        "urls": rows,
        "reason": reason,
        "send_number": number,
        "escalate_days": cfg.escalate_days,
        "greeting": greeting,
        "good_faith": GOOD_FAITH,
        "dispute": dispute_text(notice),
    }


def _render(env: SandboxedEnvironment, name: str, context: dict[str, Any]) -> str:
    """One template rendered, or UsageError naming it (exit 2)."""
    try:
        return env.get_template(name).render(context)
    except Exception as exc:  # a broken operator template: syntax, unknown name, sandbox
        raise UsageError(f"notice template {name}: {type(exc).__name__}: {exc}"[:300]) from None


def _headers(
    msg: EmailMessage, notice: Notice, reason: str | None, number: int, now: datetime
) -> None:
    to, cc = _recipients(notice, reason)
    sender = _address(notice.operator_contact, "operator contact", notice.serial)
    msg["From"] = Address(display_name=notice.operator_name or "", addr_spec=sender)
    msg["To"] = _address(to, "abuse contact", notice.serial)
    if cc:
        msg["Cc"] = _address(cc, "abuse contact", notice.serial)
    msg["Reply-To"] = sender
    prefix = {"re-notice": "Reminder: ", "escalation": "Escalation: "}.get(reason or "", "")
    msg["Subject"] = f"{prefix}[{notice.serial}] Child sexual abuse material on your network"
    if notice.kind == "urgent":
        msg.replace_header(
            "Subject", f"URGENT referral [{notice.serial}]: a child may be at risk now"
        )
    msg["Date"] = format_datetime(now.astimezone(UTC))
    msg["Message-ID"] = message_id(notice, number)
    if number > 1:
        msg["In-Reply-To"] = message_id(notice, 1)
        msg["References"] = message_id(notice, 1)


def render_message(
    notice: Notice, urls: Sequence[NoticeUrl], cfg: Settings, now: datetime
) -> EmailMessage:
    """The message for the notice's next send (or its last one when none is due)."""
    reason = send_reason(notice, now, cfg.renotice_hours)
    number = notice.send_count + 1 if reason else max(notice.send_count, 1)
    msg = EmailMessage(policy=email.policy.default)
    try:
        _headers(msg, notice, reason, number, now)
    except ValueError as exc:  # CR/LF or other header-unsafe text, e.g. in the operator name
        raise UsageError(f"{notice.serial}: unsafe header value refused ({exc})") from exc
    html_env, text_env = _environments(cfg)
    context = _context(notice, urls, reason, number, cfg)
    msg.set_content(_render(text_env, "notice.txt.j2", context))
    msg.add_alternative(_render(html_env, "notice.html.j2", context), subtype="html")
    return msg


def check_templates(cfg: Settings) -> None:
    """Load (compile) both notice templates: UsageError naming a broken one."""
    html_env, text_env = _environments(cfg)
    for env, name in ((text_env, TEMPLATES[0]), (html_env, TEMPLATES[1])):
        try:
            env.get_template(name)
        except Exception as exc:
            raise UsageError(f"notice template {name}: {type(exc).__name__}: {exc}"[:300]) from None


def render_all(
    loaded: Sequence[tuple[Notice, list[NoticeUrl]]], cfg: Settings, now: datetime
) -> list[Rendered]:
    """Every message, or UsageError before anything is written."""
    return [Rendered(n.serial, render_message(n, urls, cfg, now)) for n, urls in loaded]


def eml_bytes(message: EmailMessage) -> bytes:
    """RFC 5322 on the wire: CRLF line ends."""
    return message.as_bytes(policy=email.policy.SMTP)


def mbox_bytes(rendered: Sequence[Rendered], now: datetime) -> bytes:
    """An mboxrd stream (for `--output -`): `From ` lines quoted inside bodies."""
    stamp = now.astimezone(UTC).strftime("%a %b %d %H:%M:%S %Y")
    out = bytearray()
    for item in rendered:
        body = item.message.as_bytes(policy=email.policy.default.clone(linesep="\n"))
        lines = body.split(b"\n")
        quoted = [b">" + ln if ln.lstrip(b">").startswith(b"From ") else ln for ln in lines]
        out += b"From takedown-crawler " + stamp.encode() + b"\n" + b"\n".join(quoted) + b"\n"
    return bytes(out)
