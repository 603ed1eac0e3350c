"""The analyst's console around the item page: wellness settings and the leads' dashboard.

Kept apart from review.views (its own blueprint, same endpoint style): `/settings` for
every signed-in user, the team default for admins, `/dashboard` for leads and admins.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from crawler.db.audit import Event
from review import dashboard, wellness
from review.audit import record
from review.web import now, principal, reader, roles, user, writing

bp = Blueprint("console", __name__)
log = logging.getLogger("review")

SAVED = {
    "saved": "Settings saved.",
    "team": "Team default saved.",
    "reset": "Your own settings were removed: the team default applies.",
}


def current_wellness() -> wellness.Wellness:
    """The signed-in user's settings (read once per request), built-in ones otherwise."""
    if "wellness" not in g:
        p = principal()
        g.wellness = wellness.Wellness()
        if p is not None:
            try:
                g.wellness = wellness.for_user(reader(), p.user_id)
            except SQLAlchemyError:  # an error page while the database fails: defaults
                log.warning("wellness settings unreadable; showing the built-in ones")
    found: wellness.Wellness = g.wellness
    return found


@bp.app_context_processor
def _console_globals() -> dict[str, object]:
    return {"wellness": current_wellness, "clock_now": now}


def _settings_page(error: str | None, status: int = 200) -> Response:
    session = reader()
    mine = current_wellness()
    body = render_template(
        "settings.html",
        mine=mine,
        team=wellness.team_default(session),
        error=error,
        saved=SAVED.get(request.args.get("done", "")),
        ranges={
            "blur": wellness.BLUR_RANGE,
            "minutes": wellness.BREAK_MINUTES_RANGE,
            "reveals": wellness.BREAK_REVEALS_RANGE,
        },
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("/settings")
@roles()
def settings_page() -> Response:
    return _settings_page(None)


def _store(user_id: int | None, action: str, done: str) -> Response:
    p = user()
    try:
        parsed = wellness.parse(request.form.to_dict())
    except wellness.InvalidSettings as exc:
        return _settings_page(str(exc), status=400)
    with writing() as session:
        wellness.save(session, user_id, parsed, now())
        record(session, Event(p.username, action, "user", user_id or 0))
    return redirect(url_for("console.settings_page", done=done))  # type: ignore[return-value]


@bp.post("/settings")
@roles()
def save_settings() -> Response:
    return _store(user().user_id, "wellness.update", "saved")


@bp.post("/settings/team")
@roles("admin")
def save_team_default() -> Response:
    return _store(None, "wellness.team_default", "team")


@bp.post("/settings/reset")
@roles()
def reset_settings() -> Response:
    p = user()
    with writing() as session:
        wellness.clear(session, p.user_id)
        record(session, Event(p.username, "wellness.reset", "user", p.user_id))
    return redirect(url_for("console.settings_page", done="reset"))  # type: ignore[return-value]


@bp.get("/dashboard")
@roles("lead", "admin")
def dashboard_page() -> str:
    figures = dashboard.collect(reader(), now())
    return render_template("dashboard.html", d=figures, charts=dashboard.charts(figures))
