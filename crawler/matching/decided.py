"""Who settled a review item, read from `review_items.decided_via` (docs/review.md).

`decided_via` is `analyst` (a person decided), `list:NAME` (an exact match on a trusted
`auto` list confirmed it with no person) or `media:ITEM_ID` (an analyst's earlier decision
on the same media confirmed it with no person). Items decided before `decided_via`
existed hold NULL there; the only way to a decision then was a person, so they count as
`analyst`. The leads' dashboard and the transparency report both count through here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, literal_column

from crawler.db.models import ReviewItem

ANALYST = "analyst"
BY_LIST = "list"  # a trusted list, no person
BY_DECISION = "media"  # an earlier decision on the same media, no person
KINDS = (ANALYST, BY_LIST, BY_DECISION)


def how_decided(via: str | None) -> str:
    """`list`, `media` (both: without a person) or `analyst`."""
    if via is not None:
        if via.startswith("list:"):
            return BY_LIST
        if via.startswith("media:"):
            return BY_DECISION
    return ANALYST


def is_auto(via: str | None) -> bool:
    """Decided without a person: by a trusted list or by an earlier decision."""
    return how_decided(via) != ANALYST


def how_decided_sql() -> Any:
    """`how_decided` as an SQL expression (the same answer on SQLite and PostgreSQL).

    Constants, not bound parameters: PostgreSQL groups by it only when the expression in
    GROUP BY is the very same text as in the select list."""
    return case(
        (ReviewItem.decided_via.like(literal_column("'list:%'")), literal_column(f"'{BY_LIST}'")),
        (
            ReviewItem.decided_via.like(literal_column("'media:%'")),
            literal_column(f"'{BY_DECISION}'"),
        ),
        else_=literal_column(f"'{ANALYST}'"),
    )
