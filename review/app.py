"""The review app factory (Flask tutorial style): no module-level app, engine or settings.

`create_app(settings)` for `takedown review serve`; `create_app(test_config={...})` or
`create_app(settings, test_config)` in tests, where `test_config` overrides any
`ReviewConfig` field (`db_url`, `secret_key`, `clock`, `preview`, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from jinja2 import select_autoescape
from werkzeug.exceptions import HTTPException, InternalServerError

from crawler.config import Settings
from crawler.db.session import Database
from review import web
from review.body_limit import BodyLimit, refuse_oversized
from review.checkpoint import Checkpointer
from review.config import ReviewConfig
from review.ratelimit import RateLimiter
from review.throttle import LoginThrottle
from review.web_text import register_filters

log = logging.getLogger("review")

MIN_SECRET_LENGTH = 16


def _config(settings: Settings | None, test_config: Mapping[str, Any] | None) -> ReviewConfig:
    overrides = dict(test_config or {})
    if settings is not None:
        return ReviewConfig.from_settings(settings, **overrides)
    if "db_url" not in overrides or "secret_key" not in overrides:
        raise ValueError("create_app needs settings, or a test_config with db_url and secret_key")
    return ReviewConfig(
        db_url=overrides.pop("db_url"), secret_key=overrides.pop("secret_key")
    ).with_overrides(overrides)


def create_app(
    settings: Settings | None = None, test_config: Mapping[str, Any] | None = None
) -> Flask:
    config = _config(settings, test_config)
    if len(config.secret_key) < MIN_SECRET_LENGTH:
        raise ValueError(f"TAKEDOWN_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
    app = Flask("review", template_folder="templates", static_folder="static")
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=config.max_body_bytes,
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
        JSON_SORT_KEYS=False,
    )
    # Flask autoescapes only .html/.htm/.xml/.xhtml/.svg; every template is escaped here.
    app.jinja_env.autoescape = select_autoescape(default=True, default_for_string=True)
    register_filters(app)
    app.extensions["review_config"] = config
    # A fixed set of statements on long-lived pooled connections: prepared at first use
    # (docs/benchmarks.md, "Review app").
    db = Database(config.db_url, prepare_threshold=0)
    app.extensions["review_db"] = db
    app.extensions["review_checkpointer"] = Checkpointer(db.engine)
    # Their state is in the database, shared by every app process (review.server).
    app.extensions["review_throttle"] = LoginThrottle()
    app.extensions["review_preview_limiter"] = RateLimiter(config.preview.per_minute, 60.0)
    _wire(app)
    # The limit above holds for chunked bodies too (review.body_limit).
    app.wsgi_app = BodyLimit(app.wsgi_app, config.max_body_bytes)  # type: ignore[method-assign]
    return app


def _wire(app: Flask) -> None:
    from review import api, console, views

    app.before_request(web.new_nonce)
    app.before_request(refuse_oversized)
    app.before_request(web.load_principal)
    app.before_request(web.check_csrf)
    app.after_request(web.security_headers)
    app.teardown_request(web.close_reader)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(console.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/openapi.json"


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    # Werkzeug's descriptions are generic; our own abort() messages are short and safe.
    message = exc.description if code < 500 else "Something went wrong."
    if _wants_json():
        response = jsonify({"error": exc.name, "detail": message})
    else:
        response = Response(
            render_template("error.html", code=code, name=exc.name, message=message),
            mimetype="text/html",
        )
    response.status_code = code
    if code == 401 and not _wants_json():
        response.status_code = 401
    if code == 429 and isinstance(exc.response, Response):
        response.headers["Retry-After"] = exc.response.headers.get("Retry-After", "1")
    return response


def _unexpected(exc: Exception) -> Response:
    # Logged with the traceback for the operator; the browser sees a generic page.
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _http_error(InternalServerError())
