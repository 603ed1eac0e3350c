"""`evidence export` names its page unambiguously (docs/operations.md), on both engines.

The candidates' `id` is the review item, not the page: `--item` takes that id, `--page`
(or a bare PAGE_ID) the page id (`page_id` in `export candidates`), or the page's URL.
A reference that names no page exits 2 with one line and writes nothing.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from crawler.db.session import Database
from crawler.reporting.exports import export
from tests.support.evidence_seed import crawl, decide
from tests.support.media import synthetic_png

HTML = "<html><head><title>Gallery</title></head><body><img src='a.png'></body></html>"
FIRST, SECOND = "http://127.0.0.2/first/", "http://127.0.0.2/second/"


def _two_pages(db: Database, db_url: str, env: dict[str, str]) -> tuple[int, int]:
    """Two recorded pages; only the second has a review item (so item id 1 is page 2)."""
    home = Path(env["TAKEDOWN_HOME"])
    ids = []
    for n, url in enumerate((FIRST, SECOND)):
        done = crawl(db, db_url, home, HTML, [(f"{url}a.png", synthetic_png(n))], url=url)
        done.store.close()
        done.evidence.close()
        ids.append(done.page_id)
    return ids[0], ids[1]


def _bundled_url(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return str(json.loads(zf.read("manifest.json"))["page"]["url"])


def test_export_by_item_page_id_or_url_bundles_the_candidates_page(
    db: Database, db_url: str, env: dict[str, str], cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    first, second = _two_pages(db, db_url, env)
    item_id = decide(db, second)
    assert item_id == first  # the trap: the item's id is another page's id

    out = io.StringIO()
    export(db, "candidates", "jsonl", out)
    (candidate,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (candidate["id"], candidate["page_id"]) == (item_id, second)

    cases = {
        "item": ["--item", str(candidate["id"])],
        "page": ["--page", str(candidate["page_id"])],
        "url": [candidate["page_url"]],
        "positional page id": [str(candidate["page_id"])],
    }
    for name, args in cases.items():
        target = tmp_path / f"{name}.zip"
        code, _, err = cli("evidence", "export", *args, "--output", str(target))
        assert code == 0, (name, err)
        assert _bundled_url(target) == SECOND, name
    # The bare number stays a page id (compatibility): page 1 is the first page.
    code, _, err = cli("evidence", "export", str(first), "--output", str(tmp_path / "p1.zip"))
    assert code == 0 and _bundled_url(tmp_path / "p1.zip") == FIRST


@pytest.mark.parametrize(
    "args",
    [
        ["--item", "4242"],
        ["--page", "4242"],
        ["4242"],
        ["http://127.0.0.2/never-crawled/"],
        ["not-a-reference"],
        ["--item", "1", "--page", "1"],
        [],
    ],
    ids=["item", "page", "positional", "url", "garbage", "two", "none"],
)
def test_a_reference_that_names_no_page_is_exit_2_and_writes_nothing(
    db: Database, db_url: str, env: dict[str, str], cli, tmp_path: Path, args: list[str]
) -> None:  # type: ignore[no-untyped-def]
    first, second = _two_pages(db, db_url, env)
    decide(db, second)
    target = tmp_path / "x.zip"
    code, stdout, err = cli("evidence", "export", *args, "--output", str(target))
    assert code == 2, err
    said = [line for line in err.splitlines() if line.startswith("takedown:")]
    assert len(said) == 1 and ("no such page" in said[0] or "name one page" in said[0]
                               or "neither a page id nor a URL" in said[0]), err  # fmt: skip
    assert stdout == ""
    assert list(tmp_path.glob("*.zip")) == [] and list(tmp_path.glob(".*partial")) == []
    assert not (Path(env["TAKEDOWN_HOME"]) / "evidence" / "signing-key.pem").exists()
