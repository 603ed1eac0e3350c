"""Wellness settings: what the review app shows an analyst (docs/review.md).

One row per analyst in `wellness_settings`; the row with `user_id` NULL is the team
default an admin sets, used by everyone without a row of their own. Forms are validated
here: a value out of range is refused with one clear message and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.db.models import WellnessSetting

BLUR_RANGE = (0, 40)  # CSS pixels of blur on previews
BREAK_MINUTES_RANGE = (0, 480)  # 0: no reminder
BREAK_REVEALS_RANGE = (0, 1000)  # 0: no reminder
THEMES = ("auto", "light", "dark")


@dataclass(frozen=True)
class Wellness:
    blur_px: int = 12
    greyscale: bool = True
    reveal_confirm: bool = False
    keyframes_only: bool = True
    break_minutes: int = 0
    break_reveals: int = 0
    theme: str = "auto"
    source: str = "built-in"  # built-in | team | user

    def css(self) -> str:
        """The `:root` custom properties the stylesheet reads (plain numbers only)."""
        grey = 1 if self.greyscale else 0
        return f":root{{--preview-blur:{int(self.blur_px)}px;--preview-grey:{grey};}}"


FIELDS = (
    "blur_px",
    "greyscale",
    "reveal_confirm",
    "keyframes_only",
    "break_minutes",
    "break_reveals",
    "theme",
)


def _of(row: WellnessSetting, source: str) -> Wellness:
    return Wellness(**{f: getattr(row, f) for f in FIELDS}, source=source)


def team_default(session: Session) -> Wellness:
    row = session.execute(
        select(WellnessSetting).where(WellnessSetting.user_id.is_(None)).limit(1)
    ).scalar()
    return _of(row, "team") if row is not None else Wellness()


def for_user(session: Session, user_id: int) -> Wellness:
    """The user's own settings, else the team default, else the built-in one (one query)."""
    rows = session.execute(
        select(WellnessSetting)
        .where((WellnessSetting.user_id == user_id) | WellnessSetting.user_id.is_(None))
        .order_by(WellnessSetting.user_id.is_(None))
        .limit(1)
    ).scalars()
    row = next(iter(rows), None)
    if row is None:
        return Wellness()
    return _of(row, "team" if row.user_id is None else "user")


class InvalidSettings(ValueError):
    """A form value out of range: the message names the field and the allowed range."""


def _int(form: Mapping[str, str], name: str, label: str, bounds: tuple[int, int]) -> int:
    raw = (form.get(name) or "").strip()
    low, high = bounds
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSettings(f"{label} must be a whole number from {low} to {high}.") from None
    if not low <= value <= high:
        raise InvalidSettings(f"{label} must be from {low} to {high} (got {value}).")
    return value


def parse(form: Mapping[str, str]) -> Wellness:
    """A settings form as `Wellness`, or `InvalidSettings` (checkboxes: present = on)."""
    theme = (form.get("theme") or "auto").strip()
    if theme not in THEMES:
        raise InvalidSettings(f"Theme must be one of {', '.join(THEMES)}.")
    return Wellness(
        blur_px=_int(form, "blur_px", "Blur strength", BLUR_RANGE),
        greyscale=form.get("greyscale") == "on",
        reveal_confirm=form.get("reveal_confirm") == "on",
        keyframes_only=form.get("keyframes_only") == "on",
        break_minutes=_int(form, "break_minutes", "Break reminder (minutes)", BREAK_MINUTES_RANGE),
        break_reveals=_int(form, "break_reveals", "Break reminder (reveals)", BREAK_REVEALS_RANGE),
        theme=theme,
    )


def save(session: Session, user_id: int | None, settings: Wellness, when: datetime) -> None:
    """Store `settings` for `user_id` (None: the team default), replacing any earlier row."""
    query = select(WellnessSetting)
    if user_id is None:
        query = query.where(WellnessSetting.user_id.is_(None))
    else:
        query = query.where(WellnessSetting.user_id == user_id)
    row = session.execute(query.limit(1)).scalar()
    if row is None:
        row = WellnessSetting(user_id=user_id)
        session.add(row)
    values = asdict(settings)
    for name in FIELDS:
        setattr(row, name, values[name])
    row.updated_at = when


def clear(session: Session, user_id: int) -> None:
    """Drop the user's own row: the team default applies again."""
    row = session.execute(
        select(WellnessSetting).where(WellnessSetting.user_id == user_id)
    ).scalar()
    if row is not None:
        session.delete(row)
