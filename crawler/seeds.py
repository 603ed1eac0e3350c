"""Seed files (one URL a line, `#` comments) and seed sets in the database."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.db.models import Seed, SeedSet
from crawler.db.upsert import insert_for
from crawler.errors import UsageError

MAX_URL = 2083


def check_seed(url: str) -> str | None:
    """Why `url` cannot be a seed, or None."""
    if len(url) > MAX_URL:
        return f"longer than {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme.lower() not in {"http", "https"}:
        return "only http and https URLs can be seeds"
    if not parts.hostname:
        return "no host name"
    return None


def parse_seed_lines(text: str, source: str) -> list[str]:
    urls: list[str] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if raw.lstrip().startswith("#") else raw.strip()
        if not line:
            continue
        reason = check_seed(line)
        if reason:
            problems.append(f"line {number}: {reason}")
        elif line not in urls:
            urls.append(line)
    if problems:
        raise UsageError(
            f"{source}: {len(problems)} bad seed(s), nothing imported; " + "; ".join(problems)
        )
    return urls


def read_seed_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read seeds ({exc})") from exc
    return parse_seed_lines(text, str(path))


def import_seeds(session: Session, set_name: str, urls: list[str]) -> int:
    """Add `urls` to seed set `set_name` (created if new); returns how many were new."""
    seed_set = session.execute(select(SeedSet).where(SeedSet.name == set_name)).scalar()
    if seed_set is None:
        seed_set = SeedSet(name=set_name)
        session.add(seed_set)
        session.flush()
    added = 0
    for url in urls:
        stmt = insert_for(session, Seed.__table__).values(set_id=seed_set.id, url=url)
        result = session.execute(stmt.on_conflict_do_nothing(index_elements=["set_id", "url"]))
        added += max(getattr(result, "rowcount", 0) or 0, 0)
    return added


def seeds_of_set(session: Session, set_name: str) -> list[str]:
    seed_set = session.execute(select(SeedSet).where(SeedSet.name == set_name)).scalar()
    if seed_set is None:
        raise UsageError(
            f"no seed set named {set_name!r} (import one with `takedown seeds import`)"
        )
    query = select(Seed.url).where(Seed.set_id == seed_set.id).order_by(Seed.id)
    return list(session.execute(query).scalars())
