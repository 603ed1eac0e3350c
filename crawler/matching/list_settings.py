"""Per-list settings the matcher honours: enabled flag and PDQ threshold.

Every change bumps the list's `version`, so running crawls reload their matcher
(`Matcher.refresh_if_changed`), writes an audit event, and re-assesses at once the
review items of pages the list has matched: disabling a list closes its pending
candidates without waiting for a rematch, enabling reopens them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.db.audit import Event, record
from crawler.db.models import HashList, Match, Observation
from crawler.db.types import utcnow
from crawler.errors import UsageError
from crawler.matching.candidates import CandidateChanges, update_candidates
from crawler.media.hashlists import check_action
from crawler.media.pdq_index import MAX_RADIUS


@dataclass(frozen=True)
class SettingChange:
    name: str
    changed: bool
    candidates: CandidateChanges


def _get_list(session: Session, name: str) -> HashList:
    found = session.execute(select(HashList).where(HashList.name == name)).scalar()
    if found is None:
        raise UsageError(f"no hash list named {name!r} (see `takedown hashlist list`)")
    return found


def _pages_of(session: Session, list_id: int) -> set[int]:
    query = (
        select(Observation.page_id)
        .join(Match, Match.media_id == Observation.media_id)
        .where(Match.list_id == list_id)
        .distinct()
    )
    return {int(p) for p in session.execute(query).scalars()}


def _bump(
    session: Session, hash_list: HashList, actor: str, action: str, categories: tuple[str, ...]
) -> CandidateChanges:
    hash_list.version, hash_list.updated_at = hash_list.version + 1, utcnow()
    details = {
        "enabled": hash_list.enabled,
        "pdq_threshold": hash_list.pdq_threshold,
        "action": hash_list.action,
    }
    record(session, Event(actor, action, "hash_list", hash_list.id, details))
    session.flush()
    return update_candidates(session, _pages_of(session, hash_list.id), categories)


def set_enabled(
    session: Session,
    name: str,
    enabled: bool,
    categories: tuple[str, ...],
    actor: str = "cli",
) -> SettingChange:
    """Enable or disable list `name`; a no-op when it already is."""
    hash_list = _get_list(session, name)
    if hash_list.enabled == enabled:
        return SettingChange(name, False, CandidateChanges())
    hash_list.enabled = enabled
    action = "hashlist.enable" if enabled else "hashlist.disable"
    return SettingChange(name, True, _bump(session, hash_list, actor, action, categories))


def set_threshold(
    session: Session,
    name: str,
    threshold: int,
    categories: tuple[str, ...],
    actor: str = "cli",
) -> SettingChange:
    """Set the PDQ match distance of list `name` (0 to 64)."""
    if not 0 <= threshold <= MAX_RADIUS:
        raise UsageError(f"--pdq-threshold {threshold}: must be between 0 and {MAX_RADIUS}")
    hash_list = _get_list(session, name)
    if hash_list.pdq_threshold == threshold:
        return SettingChange(name, False, CandidateChanges())
    hash_list.pdq_threshold = threshold
    changes = _bump(session, hash_list, actor, "hashlist.set", categories)
    return SettingChange(name, True, changes)


def set_action(
    session: Session,
    name: str,
    action: str,
    categories: tuple[str, ...],
    actor: str = "cli",
) -> SettingChange:
    """`review` or `auto` (known lists only): whether exact matches confirm on their own.

    Turning a list `auto` confirms at once every pending page it matched exactly; turning
    it back to `review` settles nothing anew (`takedown hashlist revert` undoes what it
    settled)."""
    hash_list = _get_list(session, name)
    check_action(action, hash_list.kind)
    if hash_list.action == action:
        return SettingChange(name, False, CandidateChanges())
    hash_list.action = action
    return SettingChange(name, True, _bump(session, hash_list, actor, "hashlist.set", categories))
