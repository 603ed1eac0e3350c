"""Waiting for a rendered page to settle before its HTML is taken (`[render]` policy).

`load` comes early in our browser (images, media and fonts are aborted), while galleries
insert their images after timers, XHR answers or on scroll. So a page is taken only once
it has *settled*: no request in flight and, for `settle_ms`, neither a DOM mutation nor a
request starting or ending. It settles once, is scrolled down one viewport at a time to
the bottom (scroll handlers and lazy loaders fire), and settles again.

All of it, navigation included, is bounded by the page's budget `max_render_s`: the
navigation timeout is the budget, and settling stops at the budget's end. A page that
never settles (it mutates forever, or keeps a request open) is taken as it stands at the
budget and marked: `Settle.cut` is True, `RenderPagesMiddleware` flags the response
`render-cut`, counts `render/settle/cut` and logs a warning, and the spider records the
page with `parse_incomplete` (never read as "no media"). Settled pages count
`render/settle/settled`.

The page's own scripts run in the same world as ours: a hostile page can only delay its
own snapshot (to the budget) or hurry it; nothing here reads what the page says of itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

# Resolves once the document went `ms` without a mutation.
DOM_QUIET_JS = """(ms) => new Promise((resolve) => {
  let timer = null;
  const observer = new MutationObserver(() => { clearTimeout(timer); timer = setTimeout(done, ms); });
  function done() { observer.disconnect(); resolve(true); }
  observer.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  timer = setTimeout(done, ms);
})"""

# One pass down the page, a viewport at a time (at most 50 steps), then to the very end.
SCROLL_JS = """async () => {
  const frame = () => new Promise((r) => { requestAnimationFrame(() => r()); setTimeout(r, 50); });
  const root = document.scrollingElement || document.documentElement;
  const step = Math.max(200, window.innerHeight || 600);
  for (let i = 0; i < 50 && root && window.scrollY + window.innerHeight < root.scrollHeight; i++) {
    window.scrollBy(0, step);
    await frame();
  }
  if (root) { window.scrollTo(0, root.scrollHeight); await frame(); }
}"""

POLL_S = 0.025
MAX_STEP_ERRORS = 20  # a page whose evaluations keep failing is taken as it stands


class Settle:
    """One rendering's settle state: the budget, the page's network activity, the result.

    Built per request by `RenderPagesMiddleware`; `page_init` (scrapy-playwright's page
    init callback, before navigation) starts the clock and the network count, `settle`
    (a `PageMethod`, after navigation) waits."""

    def __init__(self, settle_ms: int, max_render_s: float) -> None:
        self.quiet_s = settle_ms / 1000
        self.budget_s = max_render_s
        self.started: float | None = None
        self.inflight = 0
        self.events = 0  # requests started or ended: any change restarts the quiet period
        self.cut = False
        self.settled = False

    # scrapy-playwright calls this with (page, request) before `page.goto`.
    async def page_init(self, page: Any, request: Any = None) -> None:
        self.started = asyncio.get_running_loop().time()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, _request: Any) -> None:
        self.inflight += 1
        self.events += 1

    def _ended(self, _request: Any) -> None:
        self.inflight = max(0, self.inflight - 1)
        self.events += 1

    def remaining(self) -> float:
        loop = asyncio.get_running_loop()
        started = self.started if self.started is not None else loop.time()
        return started + self.budget_s - loop.time()

    # a `PageMethod(settle.settle)`: scrapy-playwright passes the page.
    async def settle(self, page: Any) -> bool:
        """Wait for the page to settle, scroll, settle again; False when cut at the budget."""
        remaining = self.remaining()
        try:
            if remaining <= 0:
                raise TimeoutError
            await asyncio.wait_for(self._settle_scroll_settle(page), timeout=remaining)
        except TimeoutError:
            self.cut = True
        else:
            self.settled = True
        return self.settled

    async def _settle_scroll_settle(self, page: Any) -> None:
        await self._quiet(page)
        await self._evaluate(page, SCROLL_JS)
        await self._quiet(page)

    async def _quiet(self, page: Any) -> None:
        errors = 0
        while True:
            while self.inflight:
                await asyncio.sleep(POLL_S)
            mark = self.events
            if not await self._evaluate(page, DOM_QUIET_JS, round(self.quiet_s * 1000)):
                errors += 1  # e.g. the page navigated itself: its new document settles
                if errors >= MAX_STEP_ERRORS:
                    return
                await asyncio.sleep(max(self.quiet_s, POLL_S))
                continue
            if self.events == mark and not self.inflight:
                return

    @staticmethod
    async def _evaluate(page: Any, script: str, *args: Any) -> bool:
        """True when the script ran to its end; a failing page script is no reason to
        lose the page (its HTML is still taken)."""
        try:
            await page.evaluate(script, *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # playwright's Error: closed context, navigation, ...
            log.debug("settle step failed: %s", exc)
            return False
        return True


def page_methods(settle: Settle) -> list[Any]:
    """The `playwright_page_methods` of a rendered page request."""
    from scrapy_playwright.page import PageMethod

    return [PageMethod(settle.settle)]


def attach(meta: dict[str, Any], settle_ms: int, max_render_s: float) -> Settle:
    """Set the request meta scrapy-playwright reads; the `Settle` is kept as `td_settle`."""
    settle = Settle(settle_ms, max_render_s)
    meta["td_settle"] = settle
    meta["playwright_page_init_callback"] = settle.page_init
    meta["playwright_page_methods"] = page_methods(settle)
    return settle


def result(meta: dict[str, Any]) -> Settle | None:
    settle = meta.get("td_settle")
    return settle if isinstance(settle, Settle) else None
