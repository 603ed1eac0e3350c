"""Scrapy's downloader with the per-slot concurrency bound restored (`DOWNLOADER`).

Scrapy 2.19 starts each download with `_schedule_coro`, which under the asyncio reactor
creates a task that runs on the *next* loop turn; the request only joins
`slot.transferring` when that task starts. With no delay in force, `_process_queue`
therefore sees every transfer slot free and drains the whole queue at once: a host with
`per_host_concurrency = 2` got 11 requests in flight (pages and media alike). Here a
request is counted as transferring *before* its task is scheduled, so the bound holds;
`_download` adds it again (a set: no change) and removes it when it finishes, as before.

The loop is Scrapy's own otherwise (delay, jitter and burst handling unchanged), so the
delay floor and robots.txt ``Crawl-delay`` still apply per slot (= canonical host).
"""

from __future__ import annotations

from time import monotonic

from scrapy.core.downloader import Downloader, Slot
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _schedule_coro


class BoundedDownloader(Downloader):
    def _process_queue(self, slot: Slot) -> None:
        if slot.latercall:
            return  # a delayed run is pending: it processes the queue
        now = monotonic()
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            slot.transferring.add(request)  # the fix: claim the slot now, not next turn
            _schedule_coro(self._wait_for_download(slot, request, queue_dfd))
            if delay:  # one request per delay: no burst
                self._process_queue(slot)
                break
