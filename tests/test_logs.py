"""E-10: hostile strings in log lines are encoded, capped and stamped in UTC."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from crawler import logs
from crawler.errors import UsageError

HOSTILE = "http://x.test/\r\nFAKE 2026 ERROR forged line\x1b[2J\x07" + "A" * 10_000


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_hostile_values_stay_on_one_safe_line(fmt: str) -> None:
    stream = io.StringIO()
    logs.setup(fmt, stream=stream)
    try:
        logging.getLogger("crawler.test").warning("fetched %s", HOSTILE)
    finally:
        logs.setup("text", stream=io.StringIO())
    output = stream.getvalue()
    assert output.count("\n") == 1 and "\r" not in output and "\x1b" not in output
    assert len(output) < logs.MAX_MESSAGE + 200
    line = output.rstrip("\n")
    if fmt == "json":
        doc = json.loads(line)
        assert doc["level"] == "WARNING" and doc["ts"].endswith("Z")
        assert doc["msg"].startswith("fetched http://x.test/\\x0d\\x0aFAKE")
    else:
        assert line.split(" ", 1)[0].endswith("Z") and "\\x1b[2J" in line


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="TAKEDOWN_LOG_FORMAT"):
        logs.formatter_for("xml", io.StringIO())


def test_scrapy_log_level_applies_to_the_loggers() -> None:
    """Scrapy's LOG_LEVEL holds with our root handler: no per-page DEBUG records are built."""
    from scrapy.settings import Settings

    from crawler.engine.addon import TakedownAddon

    stream = io.StringIO()
    logs.setup("json", stream=stream)
    scrapy_logger = logging.getLogger("scrapy")
    before = scrapy_logger.level
    try:
        settings = Settings({"LOG_INSTALL_ROOT_HANDLER": False, "LOG_LEVEL": "WARNING"})
        TakedownAddon().update_settings(settings)
        logging.getLogger("scrapy.core.engine").debug("Crawled (200) <GET http://x.test/>")
        logging.getLogger("crawler.test").info("progress line")
        logging.getLogger("scrapy.core.engine").warning("kept")
        assert not logging.getLogger("scrapy.core.scraper").isEnabledFor(logging.DEBUG)
    finally:
        scrapy_logger.setLevel(before)
        logs.setup("text", stream=io.StringIO())
    lines = [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]
    assert lines == ["kept"]


def test_unknown_log_level_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="LOG_LEVEL"):
        logs.apply_level("LOUD")


def test_scrapy_log_file_takes_the_lines_off_the_terminal(tmp_path: Path) -> None:
    """The live display sets LOG_FILE: with our root handler the lines must go there."""
    from scrapy.settings import Settings

    from crawler.engine.addon import TakedownAddon

    terminal = io.StringIO()
    logs.setup("json", stream=terminal)
    log_file = tmp_path / "crawl.log"
    scrapy_logger = logging.getLogger("scrapy")
    before = scrapy_logger.level
    try:
        settings = Settings(
            {"LOG_INSTALL_ROOT_HANDLER": False, "LOG_LEVEL": "INFO", "LOG_FILE": str(log_file)}
        )
        TakedownAddon().update_settings(settings)
        logging.getLogger("scrapy.core.engine").info("Spider opened <b>x</b>\x1b[2J")
    finally:
        scrapy_logger.setLevel(before)
        for handler in logging.getLogger().handlers:
            handler.close()
        logs.setup("text", stream=io.StringIO())
    assert terminal.getvalue() == ""
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["msg"] for line in lines] == ["Spider opened <b>x</b>\\x1b[2J"]


def test_scrapy_startup_dumps_are_debug_records() -> None:
    """Scrapy's start-up dumps are DEBUG: absent at INFO, kept at DEBUG."""
    stream = io.StringIO()
    logs.setup("json", stream=stream)
    scrapy_logger = logging.getLogger("scrapy")
    before = scrapy_logger.level

    def dumps() -> None:
        log = logging.getLogger
        log("scrapy.utils.log").info(
            "Scrapy %(version)s started (bot: %(bot)s)", {"version": "2", "bot": "b"}
        )
        log("scrapy.utils.log").info("Versions:\n{'lxml': '5'}")
        log("scrapy.crawler").info("Overridden settings:\n%(settings)s", {"settings": "{}"})
        log("scrapy.addons").info("Enabled addons:\n%(addons)s", {"addons": "[]"})
        log("scrapy.middleware").info(
            "Enabled %(componentname)ss:\n%(enabledlist)s",
            {"componentname": "extension", "enabledlist": "[]"},
        )
        log("scrapy.middleware").warning(
            "Disabled %(clspath)s: %(eargs)s", {"clspath": "x", "eargs": "y"}
        )
        log("scrapy.core.engine").info("Spider opened")
        log("crawler.engine.runner").info("run 1: started")

    try:
        logs.apply_level("INFO")
        dumps()
        at_info = [json.loads(line) for line in stream.getvalue().splitlines()]
        stream.truncate(0), stream.seek(0)
        logs.apply_level("DEBUG")
        dumps()
        at_debug = [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        scrapy_logger.setLevel(before)
        logs.setup("text", stream=io.StringIO())
    assert [(d["level"], d["msg"]) for d in at_info] == [
        ("WARNING", "Disabled x: y"),
        ("INFO", "Spider opened"),
        ("INFO", "run 1: started"),
    ]
    levels = [(d["level"], d["msg"].split(":")[0].split(" (")[0]) for d in at_debug]
    assert levels[:5] == [
        ("DEBUG", "Scrapy 2 started"),
        ("DEBUG", "Versions"),
        ("DEBUG", "Overridden settings"),
        ("DEBUG", "Enabled addons"),
        ("DEBUG", "Enabled extensions"),
    ]
    assert len(at_debug) == 8
