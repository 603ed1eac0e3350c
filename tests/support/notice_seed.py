"""Synthetic hosts, pages and decided review items, written straight into the schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from crawler.config import Settings
from crawler.db.models import Host, Page, ReviewItem

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": "/nonexistent",
        "db_url": "sqlite://",
        "operator_name": "Example Hotline",
        "operator_contact": "notices@hotline.example",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def host(
    session: Session,
    name: str,
    ip: str,
    *,
    contact: str | None = None,
    source: str | None = "rdap",
    domain: str | None = None,
    asn: int | None = 64500,
    as_org: str | None = "Example Hosting",
    country: str | None = "NL",
) -> Host:
    row = Host(
        host=name,
        ip=ip,
        registered_domain=domain,
        asn=asn,
        as_org=as_org,
        country=country,
        abuse_contact=contact,
        abuse_contact_source=source if contact else None,
    )
    session.add(row)
    session.flush()
    return row


_counter = iter(range(1, 1_000_000))


def item(
    session: Session,
    at: Host | None,
    *,
    status: str = "confirmed",
    category: str | None = "A",
    first_seen: datetime = T0,
    decided_at: datetime | None = T0,
    created_at: datetime = T0,
    url: str | None = None,
) -> ReviewItem:
    n = next(_counter)
    url = url or f"http://{at.host if at else 'nowhere.example'}/page/{n}"
    page = Page(
        url=url,
        canonical_url=f"{url}#{n}",
        host_id=at.id if at else None,
        status_code=200,
        first_seen=first_seen,
        last_seen=first_seen,
    )
    session.add(page)
    session.flush()
    row = ReviewItem(
        page_id=page.id,
        status=status,
        category=category,
        decided_at=decided_at,
        created_at=created_at,
        updated_at=created_at,
    )
    session.add(row)
    session.flush()
    return row
