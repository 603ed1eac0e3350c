"""Which recorded matches count: the one owner of the "active match" rule.

Matching records a `Match` row for every hit of a media against a list entry, and keeps
it when the lists change later. Whether a recorded match counts is decided as the lists
are *now*, here and nowhere else:

- **active**: its list is enabled, its entry is not quarantined (flood guard) and, for a
  PDQ match, its distance is within the list's current threshold (`active_clause`, SQL,
  so readers filter or select it in the database);
- **suppressed**: an active known match on a media that also has an active benign match
  (benign lists win over every known list, `auto` ones included);
- **benign**: an active benign match (the reason for a suppression);
- **inactive**: anything else.

Only `active` matches are hits: they open review items, count for rechecks and are the
`matches` of the exports; suppressed ones are exported as `suppressed_matches`.
Candidates (`crawler.matching.candidates`), rechecks (`crawler.notices.recheck`), the exports
(`crawler.reporting.exports`) and the review app (`review.items`) all take the rule from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

ACTIVE = "active"
SUPPRESSED = "suppressed"
BENIGN = "benign"
INACTIVE = "inactive"


def active_clause(match: Any, entry: Any, hash_list: Any) -> ColumnElement[bool]:
    """SQL: the match counts under its list's current settings.

    The arguments are the `Match`, `HashEntry` and `HashList` columns (ORM classes,
    aliases or `Table.c`), as joined by the caller.
    """
    return and_(
        hash_list.enabled.is_(True),
        entry.quarantined_at.is_(None),
        or_(match.match_type != "pdq", match.distance <= hash_list.pdq_threshold),
    )


def match_states(matches: Iterable[tuple[str, Any]]) -> list[str]:
    """The state of each of ONE media's matches, given each one's (list kind, active).

    `active` is the value of `active_clause` as read back (SQLite gives 0/1, PostgreSQL
    a boolean; NULL is not active).
    """
    rows = [(kind, bool(active)) for kind, active in matches]
    benign = any(kind == "benign" and active for kind, active in rows)
    return [
        INACTIVE if not active else BENIGN if kind == "benign" else SUPPRESSED if benign else ACTIVE
        for kind, active in rows
    ]
