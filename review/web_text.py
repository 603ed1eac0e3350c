"""Jinja filters for hostile text: every crawled string goes through one of these."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from review.text import ascii_host, display_text, link_target, unicode_host


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["shown"] = display_text
    app.jinja_env.filters["link_target"] = link_target
    app.jinja_env.filters["ascii_host"] = ascii_host
    app.jinja_env.filters["unicode_host"] = unicode_host
    app.jinja_env.filters["when"] = _when
