"""A page with data: images keeps no image bytes anywhere: WARC, bundle, home, database (M-11)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import uuid
from pathlib import Path
from urllib.parse import quote_from_bytes

from crawler.db.session import Database
from crawler.evidence.bundle import export_bundle
from crawler.evidence.datauri import sanitize
from tests.support.at_rest import db_text, expanded, marker_needles
from tests.support.evidence_seed import crawl
from tests.support.media import synthetic_png


def _page(png: bytes) -> str:
    b64 = base64.b64encode(png).decode()
    wrapped = "\n".join(b64[i : i + 60] for i in range(0, len(b64), 60))
    return (
        "<html><head><style>.hero{background:url(data:image/png;base64," + b64 + ")}</style></head>"
        f'<body><img src="data:image/png;base64,{b64}" alt="a">'
        f"<img srcset='a.png 1x, data:image/png;base64,{b64} 2x'>"
        f'<div style="background-image: url(&quot;data:image/png;base64,{b64}&quot;)"></div>'
        f'<img src="data:image/png;base64,\n{wrapped}\n">'
        f"<script>var i = 'data:image/png;base64,{b64}';</script>"
        f'<object data="data:image/png,{quote_from_bytes(png)}"></object>'
        "</body></html>"
    )


def test_data_images_leave_only_their_hashes(
    db: Database, db_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    marker = f"TDMARK-{uuid.uuid4().hex}"
    png = synthetic_png(11, text=marker)
    home = Path(env["TAKEDOWN_HOME"])
    done = crawl(db, db_url, home, _page(png), [])
    done.store.close()
    done.evidence.close()
    bundle = export_bundle(db, home, done.page_id)
    (home / "bundle.zip").write_bytes(bundle.data)

    digest = hashlib.sha256(png).hexdigest()
    warcs = list((home / "evidence" / "warc").rglob("*.warc.gz"))
    assert len(warcs) == 1
    text = gzip.decompress(warcs[0].read_bytes()).decode()
    assert text.count(f"sha256={digest}") == 7  # every form replaced by its placeholder
    assert "srcset='a.png 1x, data:application/x-takedown-removed" in text and " 2x'>" in text

    needles = [*marker_needles(marker.encode()), base64.b64encode(png)[:40], png[:64]]
    haystacks = {"database": db_text(db)}
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        haystacks[str(path)] = b"".join(expanded(path.read_bytes()))
    assert any(p.endswith("bundle.zip") for p in haystacks)
    assert [where for where, data in haystacks.items() for n in needles if n in data] == []


def test_sanitize_reports_each_data_uri_once() -> None:
    png = synthetic_png(3)
    result = sanitize(_page(png))
    assert len(result.replaced) == 7
    assert {m.sha256 for m in result.replaced} == {hashlib.sha256(png).hexdigest()}
    assert all(m.pdq for m in result.replaced) and not any(m.malformed for m in result.replaced)
    assert "base64," not in result.text
