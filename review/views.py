"""Server-rendered pages: login, queue, item, decisions, previews, exposure, notices, audit.

Routes and accessible names follow docs/interface.md, "Review app". Every state change is a
POST with the session's CSRF token; GET never changes review state (it may append to the
audit trail and the exposure counters, which record that something was looked at).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import desc, func, select

from crawler.db.audit import Event
from crawler.db.models import (
    DISPUTE_OUTCOMES,
    AuditEvent,
    BenignProposal,
    Notice,
    NoticeUrl,
    User,
)
from crawler.errors import UsageError
from crawler.matching import benign_proposals
from crawler.matching.media_decisions import revert
from crawler.notices import disputes
from crawler.notices.build import hold_age
from crawler.notices.build import waiting as notices_waiting
from review import auth, exposure, queue, settled
from review.audit import record
from review.decisions import DecisionRequest, decide
from review.fetch import PreviewUnavailable, fetch_media
from review.items import load_item, observation_for
from review.preview import UnsupportedMedia, render
from review.ratelimit import RateLimiter
from review.run_policy import preview_config_for
from review.text import link_target
from review.throttle import LoginThrottle
from review.web import (
    allow,
    cfg,
    cookie_name,
    cookie_secure,
    database,
    found,
    now,
    principal,
    reader,
    roles,
    user,
    valid,
    writing,
)

bp = Blueprint("views", __name__)
MAX_FIELD = 4096


def _throttle() -> LoginThrottle:
    throttle: LoginThrottle = current_app.extensions["review_throttle"]
    return throttle


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _lease() -> timedelta:
    return timedelta(seconds=cfg().lease_seconds)


@bp.get("/")
def index() -> Response:
    return redirect(url_for("views.queue_page"))  # type: ignore[return-value]


# --- login ----------------------------------------------------------------------------


@bp.get("/login")
def login_form() -> str:
    return render_template("login.html", error=None)


def _login_refused(message: str, status: int, retry_after: float | None = None) -> Response:
    response = Response(render_template("login.html", error=message), status=status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    return response


@bp.post("/login")
def login() -> Response:
    # NUL cannot be stored in PostgreSQL text: a name holding one matches no account.
    username = request.form.get("username", "")[:64].replace("\x00", "\ufffd")
    password = request.form.get("password", "")[:MAX_FIELD]
    code = request.form.get("code", "")[:16]
    address, throttle = _client_address(), _throttle()
    wait = throttle.retry_after(reader(), username, address, now())
    if wait > 0:
        with writing() as session:
            record(session, Event(username or "-", "auth.login_throttled", "address", address))
        return _login_refused("Too many attempts. Wait a moment and try again.", 429, wait)
    outcome = auth.check_credentials(reader(), username, password, code, now())
    with writing() as session:
        token = auth.complete_login(session, outcome, now()) if outcome.user else None
        if token is None:
            outcome = outcome if outcome.user is None else auth.LoginOutcome(None, "bad-code")
            details = {"reason": outcome.reason, "address": address}
            record(session, Event(username or "-", "auth.login_failed", "user", None, details))
            if outcome.reason != "code-required":
                throttle.failed(session, username, address, now())
        else:
            assert outcome.user is not None
            details = {"address": address}
            record(session, Event(username, "auth.login", "user", outcome.user.id, details))
            throttle.succeeded(session, username)
    if outcome.user is None or token is None:
        return _login_refused(_login_message(outcome.reason), 401)
    response = redirect(url_for("views.queue_page"))
    response.set_cookie(
        cookie_name(), token, httponly=True, secure=cookie_secure(), samesite="Strict", path="/"
    )
    return response  # type: ignore[return-value]


def _login_message(reason: str) -> str:
    if reason == "code-required":
        return "Enter the one-time code from your authenticator app."
    if reason == "bad-code":
        return "That one-time code is wrong or was already used."
    return "Wrong user name or password."


@bp.post("/logout")
@roles()
def logout() -> Response:
    p = user()
    with writing() as session:
        if p.session_id:
            auth.revoke_session(session, p.session_id)
        exposure.item_left(session, p.user_id, now(), cfg().max_item_seconds)
        record(session, Event(p.username, "auth.logout", "user", p.user_id))
    response = redirect(url_for("views.login_form"))
    response.delete_cookie(cookie_name(), path="/", secure=cookie_secure(), samesite="Strict")
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response  # type: ignore[return-value]


@bp.before_app_request
def _require_login_for_pages() -> Response | None:
    """Anonymous visitors of HTML pages go to the login form (the API answers 401)."""
    public = ("views.login_form", "views.login", "static", "api.openapi")
    if principal() is None and request.endpoint not in public:
        if request.path.startswith("/api/") or request.method != "GET":
            abort(401)
        return redirect(url_for("views.login_form"))  # type: ignore[return-value]
    return None


ENROLMENT_ENDPOINTS = (
    "views.account_page",
    "views.totp_start",
    "views.totp_confirm",
    "views.logout",
    "static",
)


@bp.before_app_request
def _require_totp() -> Response | None:
    """With `require_totp`, a session without one-time codes may only enrol (A-10)."""
    p = principal()
    if not cfg().require_totp or p is None or p.totp_enrolled:
        return None
    if request.endpoint in ENROLMENT_ENDPOINTS:
        return None
    if request.path.startswith("/api/") or request.method != "GET":
        abort(403, "set up one-time codes on the Account page first")
    return redirect(url_for("views.account_page", msg="totp-required"))  # type: ignore[return-value]


# --- queue ----------------------------------------------------------------------------


def filters_from(args: dict[str, str]) -> queue.QueueFilters:
    def get(name: str) -> str | None:
        value = (args.get(name) or "").strip()[:255]
        return value or None

    status = get("status")
    if status is not None and status not in queue.FILTER_STATUSES:
        abort(400, "unknown status filter")
    filters = queue.QueueFilters(get("country"), get("host"), get("list"), status)
    valid(filters.problem())
    return filters


@bp.get("/queue")
@roles()
def queue_page() -> str:
    filters = filters_from(request.args.to_dict())
    page = max(0, min(request.args.get("page", 0, type=int) or 0, 10_000))
    session = reader()
    rows = queue.list_queue(session, filters, offset=page * queue.PAGE_SIZE)
    day = exposure.day_of(now())
    counts, (reveals, views, seconds) = queue.page_counts(session, user().user_id, day)
    budget = cfg().daily_reveal_budget
    mine = exposure.Exposure(user().username, day, reveals, views, seconds, budget)
    return render_template(
        "queue.html",
        rows=rows,
        counts=counts,
        count_cap=queue.COUNT_CAP,
        filters=filters,
        page=page,
        exposure=mine,
    )


@bp.post("/queue/next")
@roles()
def next_item() -> Response:
    filters = filters_from(request.form.to_dict())
    with writing() as session:
        item_id = queue.claim_next(session, user(), filters, now(), _lease())
    if item_id is None:
        args: dict[str, Any] = {"msg": "empty", **filters.as_dict()}
        target = url_for("views.queue_page", **args)
        return redirect(target)  # type: ignore[return-value]
    return redirect(url_for("views.item_page", item_id=item_id))  # type: ignore[return-value]


# --- item -----------------------------------------------------------------------------


@bp.get("/items/<int:item_id>")
@roles()
def item_page(item_id: int) -> str:
    p = user()
    # Read outside the write transaction: on SQLite the writer lock is then held only for
    # the two appends below, not for the item's dozen reads (docs/benchmarks.md).
    view = found(load_item(reader(), item_id))
    config = cfg()
    with writing() as session:
        who = (p.user_id, p.username)
        mine = exposure.item_viewed(
            session, who, item_id, now(), config.max_item_seconds, config.daily_reveal_budget
        )
        record(session, Event(p.username, "item.view", "review_item", item_id))
    return render_template(
        "item.html",
        item=view,
        reasons=view.reasons(config.categories),
        holder=view.claimed_by == p.user_id,
        categories=config.categories,
        exposure=mine,
        four_eyes=config.four_eyes,
    )


@bp.post("/items/<int:item_id>/claim")
@roles()
def claim(item_id: int) -> Response:
    with writing() as session:
        ok = queue.claim_item(session, user(), item_id, now(), _lease())
    msg = None if ok else "held"
    return redirect(url_for("views.item_page", item_id=item_id, msg=msg))  # type: ignore[return-value]


@bp.post("/items/<int:item_id>/lease")
@roles()
def renew(item_id: int) -> Response:
    with writing() as session:
        ok = queue.renew_lease(session, user(), item_id, now(), _lease())
    if request.headers.get("X-CSRF-Token"):  # the page's timer: no page to show
        return Response(status=204 if ok else 409)
    return redirect(url_for("views.item_page", item_id=item_id, msg=None if ok else "held"))  # type: ignore[return-value]


def _decision_request() -> DecisionRequest:
    form = request.form
    action = form.get("action", "")
    version = form.get("version", type=int)
    if version is None:
        abort(400, "the form has no item version; reload the item")
    apply_to = tuple(int(v) for v in form.getlist("apply_to") if v.isdigit())
    # The item form marks that it carries the `Illegal` checkboxes: none ticked is a choice.
    illegal = (
        tuple(int(v) for v in form.getlist("illegal_media") if v.isdigit())
        if form.get("media_choice") == "1"
        else None
    )
    return DecisionRequest(
        action=action,
        version=version,
        category=form.get("category") or None,
        notes=(form.get("notes") or "").strip()[:10_000] or None,
        apply_to=apply_to,
        add_benign=form.get("add_benign") == "yes",
        illegal_media=illegal,
    )


@bp.post("/items/<int:item_id>/decision")
@roles()
def decision(item_id: int) -> Response:
    req = _decision_request()
    view = found(load_item(reader(), item_id))  # read before the writer's turn
    with writing() as session:
        outcome = decide(session, user(), item_id, req, cfg(), now(), view)
    if outcome.http_status == 404:
        abort(404)
    if not outcome.ok:
        body = render_template("decision_refused.html", outcome=outcome)
        return Response(body, status=outcome.http_status)
    also = ",".join(map(str, outcome.applied_to)) or None
    target = url_for(
        "views.queue_page",
        msg="decided",
        item=item_id,
        status=outcome.status,
        also=also,
        settled=outcome.settled or None,
        near=outcome.confirm_match or None,
        benign_proposed=outcome.benign_proposed or None,
        benign_joined=outcome.benign_joined or None,
    )
    return redirect(target)  # type: ignore[return-value]


# --- previews -------------------------------------------------------------------------


def _limiter() -> RateLimiter:
    limiter: RateLimiter = current_app.extensions["review_preview_limiter"]
    return limiter


def _preview_allowed(user_id: int) -> bool:
    with writing() as session:
        return _limiter().allow(session, f"preview:{user_id}", now())


def _image_response(body: bytes) -> Response:
    response = Response(body, mimetype="image/png")
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Content-Disposition"] = "inline"
    return response


def _unavailable(kind: str, message: str, status: int) -> Response:
    response = Response(message, status=status, mimetype="text/plain")
    response.headers["X-Preview-Status"] = kind
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


def _preview(item_id: int, observation_id: int, reveal: bool) -> Response:
    p = user()
    if not _preview_allowed(p.user_id):
        return _unavailable("rate-limited", "Too many previews; wait a minute.", 429)
    media = found(observation_for(reader(), item_id, observation_id))
    if not media.previewable:
        return _unavailable("metadata-only", "This media is shown as metadata only.", 403)
    preview = preview_config_for(reader(), observation_id, cfg().preview)
    try:
        fetched = fetch_media(media.media_url, preview)
        body = render(
            fetched.body,
            fetched.content_type,
            reveal=reveal,
            max_side=preview.max_side,
            max_pixels=preview.max_pixels,
        )
    except PreviewUnavailable as exc:
        status = {"gone": 410, "refused": 403, "too-large": 413}.get(exc.kind, 502)
        return _unavailable(exc.kind, str(exc), status)
    except UnsupportedMedia as exc:
        return _unavailable("unsupported", str(exc), 415)
    return _image_response(body)


@bp.get("/items/<int:item_id>/media/<int:observation_id>/preview")
@roles()
def preview(item_id: int, observation_id: int) -> Response:
    return _preview(item_id, observation_id, reveal=False)


@bp.post("/items/<int:item_id>/media/<int:observation_id>/reveal")
@roles()
def reveal(item_id: int, observation_id: int) -> Response:
    return _counted_reveal(item_id, observation_id, _preview)


def _counted_reveal(item_id: int, observation_id: int, show: Callable[..., Response]) -> Response:
    """A reveal (`show` with reveal=True): counted against the analyst's daily exposure
    and audited, whichever way the media is shown (image preview or keyframe strip)."""
    p = user()
    found(observation_for(reader(), item_id, observation_id))
    response = show(item_id, observation_id, reveal=True)
    with writing() as session:
        count = (
            exposure.revealed(session, p.user_id, now()) if response.status_code == 200 else None
        )
        details = {"observation": observation_id, "status": response.status_code, "today": count}
        record(session, Event(p.username, "media.reveal", "review_item", item_id, details))
    if count is not None and count >= cfg().daily_reveal_budget:
        response.headers["X-Reveal-Budget"] = "exceeded"
    return response


# --- video keyframe strips (review.keyframes) ------------------------------------------

KEYFRAMES = 6  # frames in a strip; 12 when the analyst's "keyframe strip only" is off


def _keyframes(item_id: int, observation_id: int, reveal: bool) -> Response:
    """A video's strip as JSON: each frame a PNG (base64) made from the live video, with
    its time and whether a match names it. The video itself never reaches the browser."""
    import base64

    from review.keyframes import strip
    from review.wellness import for_user

    p = user()
    if not _preview_allowed(p.user_id):
        return _unavailable("rate-limited", "Too many previews; wait a minute.", 429)
    media = found(observation_for(reader(), item_id, observation_id))
    if not media.keyframes:
        return _unavailable("metadata-only", "This media is shown as metadata only.", 403)
    preview = preview_config_for(reader(), observation_id, cfg().preview)
    dense = not for_user(reader(), p.user_id).keyframes_only
    times = [x.timestamp for x in media.matches if x.counts and x.timestamp is not None]
    try:
        fetched = fetch_media(media.media_url, preview)
        frames = strip(
            fetched.body,
            duration_s=media.duration_s,
            match_times=times,
            count=KEYFRAMES * 2 if dense else KEYFRAMES,
            reveal=reveal,
            max_side=min(preview.max_side, 256),
            max_pixels=preview.max_pixels,
            timeout_s=preview.timeout_s,
        )
    except PreviewUnavailable as exc:
        status = {"gone": 410, "refused": 403, "too-large": 413}.get(exc.kind, 502)
        return _unavailable(exc.kind, str(exc), status)
    except UnsupportedMedia as exc:
        return _unavailable("unsupported", str(exc), 415)
    body = {
        "state": "revealed" if reveal else "blurred",
        "frames": [
            {"t": f.timestamp, "match": f.match, "png": base64.b64encode(f.png).decode()}
            for f in frames
        ],
    }
    response = current_app.response_class(
        json.dumps(body, separators=(",", ":")), mimetype="application/json"
    )
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@bp.get("/items/<int:item_id>/media/<int:observation_id>/keyframes")
@roles()
def keyframes(item_id: int, observation_id: int) -> Response:
    return _keyframes(item_id, observation_id, reveal=False)


@bp.post("/items/<int:item_id>/media/<int:observation_id>/keyframes/reveal")
@roles()
def reveal_keyframes(item_id: int, observation_id: int) -> Response:
    return _counted_reveal(item_id, observation_id, _keyframes)


# --- links to crawled URLs --------------------------------------------------------------


@bp.get("/go")
@roles()
def leave_warning() -> str:
    url = request.args.get("url", "")[:4096]
    return render_template("go.html", url=url, target=link_target(url))


# --- exposure, notices, audit, admin ------------------------------------------------------


@bp.get("/exposure")
@roles()
def exposure_page() -> str:
    p = user()
    session = reader()
    budget = cfg().daily_reveal_budget
    mine = exposure.own_day(session, (p.user_id, p.username), now(), budget)
    team = exposure.team_day(session, now(), budget) if p.is_lead else None
    avoided = settled.avoided_by(session, p.user_id, p.username)
    team_avoided = settled.avoided_team(session) if p.is_lead else None
    return render_template(
        "exposure.html", exposure=mine, team=team, avoided=avoided, team_avoided=team_avoided
    )


@bp.get("/settled")
@roles("lead", "admin")
def settled_page() -> str:
    """Pages confirmed with no person, by source: a lead's check on lists and decisions."""
    via = (request.args.get("via") or "").strip()[:160] or None
    session = reader()
    return render_template(
        "settled.html",
        sources=settled.sources(session),
        rows=settled.settled_rows(session, via),
        via=via,
        done=request.args.get("reverted", type=int),
    )


@bp.post("/settled/revert")
@roles("lead", "admin")
def settled_revert() -> Response:
    """Undo everything one list or one media decision settled (batched, audited)."""
    via = request.form.get("via", "")
    kind, _, value = via.partition(":")
    p = user()
    if kind == "list" and value and len(value) <= 128:
        summary = revert(database(), list_name=value, categories=cfg().categories, actor=p.username)
    elif kind == "media" and value.isdigit() and len(value) < 12:
        summary = revert(
            database(), item_id=int(value), categories=cfg().categories, actor=p.username
        )
    else:
        abort(400, "name what to revert: list:NAME or media:ITEM_ID")
    target = url_for("views.settled_page", reverted=summary.reverted)
    return redirect(target)  # type: ignore[return-value]


@bp.get("/benign-proposals")
@roles("lead", "admin")
def benign_proposals_page() -> str:
    """Media benign-listed on Reject awaiting a second person (TAKEDOWN_BENIGN_FOUR_EYES)."""
    return render_template(
        "benign_proposals.html",
        rows=benign_proposals.waiting_rows(reader()),
        joined=request.args.get("joined", type=int),
    )


@bp.post("/benign-proposals/agree")
@roles("lead", "admin")
def benign_proposals_agree() -> Response:
    """A lead agrees with one pending proposal (never their own): the media join the list."""
    raw = request.form.get("proposal", "")
    if not (raw.isdigit() and len(raw) < 12):
        abort(400, "name the proposal to agree with")
    p = user()
    with writing() as session:
        proposal = session.get(BenignProposal, int(raw))
        if proposal is None or proposal.agreed_at is not None:
            abort(409, "this proposal is no longer pending")
        if proposal.proposed_by == p.user_id:
            abort(403, "a proposal is agreed by someone other than its author")
        joined = benign_proposals.agree(
            session, [proposal], p.user_id, p.username, cfg().categories, now()
        )
    target = url_for("views.benign_proposals_page", joined=len(joined))
    return redirect(target)  # type: ignore[return-value]


@bp.get("/notices")
@roles()
def notices_page() -> str:
    session = reader()
    rows = session.execute(select(Notice).order_by(desc(Notice.id)).limit(200)).scalars().all()
    counted = session.execute(
        select(NoticeUrl.notice_id, func.count())
        .where(NoticeUrl.notice_id.in_([n.id for n in rows]))
        .group_by(NoticeUrl.notice_id)
    )
    counts = {notice_id: int(n) for notice_id, n in counted}
    at = now()
    held = {n.id: hold_age(n, at) for n in rows if n.status == "held"}
    waiting = disputes.open_disputes(session) if user().is_lead else []
    urgent = (
        session.execute(
            select(Notice).where(Notice.kind == "urgent").order_by(desc(Notice.id)).limit(50)
        )
        .scalars()
        .all()
        if user().is_lead
        else []
    )
    return render_template(
        "notices.html",
        notices=rows,
        counts=counts,
        held=held,
        disputes=waiting,
        urgent=urgent,
        waits=notices_waiting(session),  # no valid recipient: shown with the reason
    )


@bp.post("/disputes/resolve")
@roles("lead", "admin")
def resolve_dispute() -> Response:
    """A second lead's re-assessment of a disputed URL (four-eyes: crawler.notices.disputes)."""
    dispute_id = request.form.get("dispute", type=int)
    outcome = request.form.get("outcome", "")
    if dispute_id is None or outcome not in DISPUTE_OUTCOMES:
        abort(400)
    notes = request.form.get("notes", "")[:MAX_FIELD]
    try:
        with writing() as session:
            disputes.resolve_dispute(session, dispute_id, outcome, user().username, now(), notes)
    except UsageError as exc:
        body = render_template("error.html", code=409, name="Refused", message=str(exc))
        return Response(body, status=409)
    return redirect(url_for("views.notices_page", msg="dispute"))  # type: ignore[return-value]


@bp.get("/audit")
@roles("lead", "admin")
def audit_page() -> str:
    before = request.args.get("before", type=int)
    query = select(AuditEvent).order_by(desc(AuditEvent.id)).limit(200)
    if before:
        query = query.where(AuditEvent.id < before)
    rows = reader().execute(query).scalars().all()
    with writing() as session:
        record(session, Event(user().username, "audit.view", "audit", None))
    return render_template("audit.html", events=rows)


@bp.get("/admin/users")
@roles("admin")
def users_page() -> str:
    users = reader().execute(select(User).order_by(User.username)).scalars().all()
    return render_template("users.html", users=users)


@bp.post("/admin/users/<int:user_id>/role")
@roles("admin")
def change_role(user_id: int) -> Response:
    role = request.form.get("role", "")
    allow(role in ("analyst", "lead", "admin", "disabled"))
    with writing() as session:
        found(auth.change_role(session, user(), user_id, role))
    return redirect(url_for("views.users_page", msg="role"))  # type: ignore[return-value]


@bp.get("/account")
@roles()
def account_page() -> str:
    return render_template("account.html", new_token=None, enrolment=None, error=None)


@bp.post("/account/totp/start")
@roles()
def totp_start() -> str:
    """Show a new secret as text and as an otpauth URI (no QR service ever sees it)."""
    if user().totp_enrolled:
        return account_page()
    enrolment = auth.start_enrolment(cfg().secret_key, user())
    return render_template("account.html", new_token=None, enrolment=enrolment, error=None)


@bp.post("/account/totp")
@roles()
def totp_confirm() -> Response:
    p = user()
    token = request.form.get("enrolment", "")[:MAX_FIELD]
    code = request.form.get("code", "")[:16]
    with writing() as session:
        error = auth.confirm_enrolment(session, cfg().secret_key, p, token, code, now())
    if error is not None:
        body = render_template("account.html", new_token=None, enrolment=None, error=error)
        return Response(body, status=400)
    return redirect(url_for("views.account_page", msg="totp"))  # type: ignore[return-value]


@bp.post("/account/tokens")
@roles()
def create_token() -> str:
    p = user()
    name = (request.form.get("name") or "script")[:64]
    with writing() as session:
        token = auth.create_api_token(session, p.user_id, name, now())
        record(session, Event(p.username, "token.create", "user", p.user_id, {"name": name}))
    return render_template("account.html", new_token=token)


MESSAGES = {
    "empty": "The queue is empty: nothing left to claim.",
    "held": "This item is held by someone else or not open to your role.",
    "role": "Role changed; that user's sessions were signed out.",
    "totp": "One-time codes are set up: sign-ins now ask for a code.",
    "totp-required": "Set up one-time codes before you continue.",
}


def _page_message() -> str | None:
    """Fixed texts chosen by a query key: no client-side session is needed for them."""
    key = request.args.get("msg", "")
    if key != "decided":
        return MESSAGES.get(key)
    item, status = request.args.get("item", type=int), request.args.get("status", "")
    if item is None or status not in ("confirmed", "rejected", "escalated"):
        return None
    also = [a for a in request.args.get("also", "").split(",") if a.isdigit()]
    extra = f" Also applied to items {', '.join(also)}." if also else ""
    settled = request.args.get("settled", 0, type=int) or 0
    near = request.args.get("near", 0, type=int) or 0
    if settled:
        extra += f" The media decision confirmed {settled} other pages."
    if near:
        extra += f" {near} pages with near copies wait as confirm-match items."
    proposed = request.args.get("benign_proposed", 0, type=int) or 0
    joined = request.args.get("benign_joined", 0, type=int) or 0
    if proposed:
        extra += (
            f" {proposed} media proposed for the benign list: a second analyst or a lead"
            " must agree."
        )
    if joined:
        extra += f" You agreed: {joined} media joined the benign list."
    return f"Decision recorded: item {item} is now {status}.{extra}"


@bp.app_context_processor
def _template_globals() -> dict[str, object]:
    return {
        "me": g.get("principal"),
        "csp_nonce": g.get("csp_nonce", ""),
        "page_message": _page_message() if request else None,
    }
