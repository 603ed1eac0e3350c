"""`crawler.evidence` imports nothing eagerly: the spider's `crawler.evidence.tls` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("crawler.engine.storage", "crawler.matching", "crawler.db", "crawler.evidence.records")


def _loaded_after(statement: str) -> list[str]:
    probe = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_importing_evidence_tls_loads_no_storage_or_matching() -> None:
    loaded = _loaded_after("import crawler.evidence.tls")
    assert "crawler.evidence.tls" in loaded
    assert _heavy(loaded) == []


def test_importing_the_package_loads_none_of_its_submodules() -> None:
    loaded = _loaded_after("import crawler.evidence")
    assert [m for m in loaded if m.startswith("crawler.evidence.")] == []
