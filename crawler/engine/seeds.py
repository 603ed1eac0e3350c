"""Seed files (one URL a line, `#` comments) and seed sets in the database."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.db.models import Seed, SeedSet
from crawler.db.upsert import insert_for
from crawler.errors import UsageError
from crawler.names import check_name, control_character
from crawler.net.addresses import parse_host_literal
from crawler.net.resolver import address_policy
from crawler.net.urls import InvalidURL, Scope, canonical_host, url_host

if TYPE_CHECKING:
    from crawler.policy import CrawlPolicy

MAX_URL = 2083
logger = logging.getLogger(__name__)


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
    if control_character(url):
        return f"holds a control character ({control_character(url)})"
    if not parts.hostname:
        return "no host name"
    try:
        canonical_host(parts.hostname)
    except InvalidURL as exc:
        return str(exc)
    return None


def seed_refusals(urls: Sequence[str], policy: CrawlPolicy) -> list[tuple[str, str, str]]:
    """(url, rule, reason) for each of `urls` that `policy` refuses as a seed before any
    connection: the one rule a crawl (`runner.accepted_seeds`, also behind `schedule add`)
    and a recheck (`recheck`) apply. Rules in the order they apply: "shape" (`check_seed`),
    "scope" (deny lists, patterns, reflection), "address" (an IP literal the address rules
    refuse; host names are checked later, on resolution)."""
    refused: list[tuple[str, str, str]] = []
    shaped: list[str] = []
    for url in dict.fromkeys(urls):
        reason = check_seed(url)
        if reason:
            refused.append((url, "shape", reason))
        else:
            shaped.append(url)
    out_of_scope = dict(Scope.from_policy(policy, shaped).rejected_seeds) if shaped else {}
    refused += [(url, "scope", reason) for url, reason in out_of_scope.items()]
    addresses = address_policy(policy)
    for url in shaped:
        if url in out_of_scope:
            continue
        try:
            literal = parse_host_literal(url_host(url))
        except InvalidURL as exc:
            refused.append((url, "address", str(exc)))
            continue
        reason = None if literal is None else addresses.check(literal)
        if reason:
            refused.append((url, "address", reason))
    return refused


def strip_credentials(url: str) -> tuple[str, bool]:
    """`url` without a user name and password (`http://user:pw@host/` is
    `http://host/`), and whether it had them. Credentials are never stored: not in the
    seed set, not in `pages.url`, not in an error message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, False
    if "@" not in parts.netloc:
        return url, False
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host)), True


def without_credentials(urls: list[str], source: str) -> list[str]:
    """`urls` with credentials stripped; each stripped one is logged (never the secret)."""
    out = []
    for url in urls:
        clean, had = strip_credentials(url)
        if had:
            logger.warning("%s: user name and password removed from seed %s", source, clean)
        out.append(clean)
    return list(dict.fromkeys(out))


def parse_seed_lines(text: str, source: str) -> list[str]:
    urls: list[str] = []
    problems: list[str] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if raw.lstrip().startswith("#") else raw.strip()
        if not line:
            continue
        line, had_credentials = strip_credentials(line)
        reason = check_seed(line)
        if reason:
            problems.append(f"line {number}: {reason}")
            continue
        if had_credentials:
            logger.warning("%s:%d: user name and password removed from the seed", source, number)
        if line not in urls:
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
    check_name(set_name, "seed set name")
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
