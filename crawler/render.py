"""JavaScript rendering (`--render`): refused until the browser's requests are enforced.

HAZARDS C-09: Chromium resolves names and connects by itself, past the filtering
resolver and the scope gate. Rendering may only start once every browser request goes
through the same address check (a route handler or a local policy-enforcing proxy);
until that lands, asking for it is an error rather than a silent bypass.
"""

from __future__ import annotations

from typing import Any

from crawler.errors import UsageError


def render_settings(settings: Any) -> dict[str, Any]:
    raise UsageError(
        "rendering (--render / render.javascript) refuses to start: browser requests are "
        "not yet held to the address policy (HAZARDS C-09)"
    )
