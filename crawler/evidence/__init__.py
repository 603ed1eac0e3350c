"""Evidence records: provenance a court can check, without keeping media (docs/interface.md).

Usable without Scrapy. At crawl time `EvidenceRecorder` writes, per fetched page, one
`evidence_records` row and one WARC under `TAKEDOWN_HOME/evidence/warc/` holding the page
text with every `data:` media replaced by its hashes, the fetch facts and the hashes of
each media response; never media bytes. `export_bundle` packs a page's records, WARCs,
media hashes, review decisions and audit excerpt into a zip signed with the Ed25519 key
in `TAKEDOWN_HOME/evidence/signing-key.pem`; `verify_bundle` checks one on its own;
`purge` removes records past retention, audited with counts.
"""

from __future__ import annotations

from crawler.evidence.bundle import EvidenceError, ExportResult, PageRef, export_bundle
from crawler.evidence.datauri import ReplacedMedia, Sanitized, sanitize
from crawler.evidence.keys import key_id, load_or_create_key, parse_public_key, public_pem
from crawler.evidence.records import (
    DEFAULT_RETENTION_DAYS,
    EvidenceRecorder,
    PurgeResult,
    evidence_root,
    purge,
)
from crawler.evidence.tls import tls_facts
from crawler.evidence.verify import EvidenceInvalid, VerifyReport, verify_bundle

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "EvidenceError",
    "EvidenceInvalid",
    "EvidenceRecorder",
    "ExportResult",
    "PageRef",
    "PurgeResult",
    "ReplacedMedia",
    "Sanitized",
    "VerifyReport",
    "evidence_root",
    "export_bundle",
    "key_id",
    "load_or_create_key",
    "parse_public_key",
    "public_pem",
    "purge",
    "sanitize",
    "tls_facts",
    "verify_bundle",
]
