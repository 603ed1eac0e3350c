"""O-02: with a resolver that is not ours installed, nothing is fetched at all."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.sitekit import Web, policy_text

SCRIPT = """
import json, sys
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
settings = Settings()
settings.setmodule("crawler.engine.settings", priority="project")
settings.setdict({"TAKEDOWN_POLICY": sys.argv[2], "TAKEDOWN_SEEDS": [sys.argv[1]],
                  "TWISTED_DNS_RESOLVER": "scrapy.resolver.CachingThreadedResolver",
                  "TAKEDOWN_PROGRESS": "off"}, priority="cmdline")
process = CrawlerProcess(settings)
crawler = process.create_crawler("site")
process.crawl(crawler)
process.start()
print(json.dumps({"reason": crawler.stats.get_value("finish_reason"),
                  "selftest": crawler.stats.get_value("startup/self-test")}))
"""


def test_o02_wrong_resolver_stops_before_first_fetch(web: Web) -> None:
    web["site-a.test"].page("/", "hello")
    url = f"http://{web['site-a.test'].ip}:{web.port}/"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, policy_text(web)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["reason"] == "startup-self-test-failed"
    assert "FilteringResolver" in result["selftest"]
    assert web.hits == [] and web.canary_hits == 0
