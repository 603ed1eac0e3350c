"""Evidence records: provenance a court can check, without keeping media (docs/interface.md).

Usable without Scrapy. At crawl time `EvidenceRecorder` writes, per fetched page, one
`evidence_records` row and one WARC under `TAKEDOWN_HOME/evidence/warc/` holding the page
text with every `data:` media replaced by its hashes, the fetch facts and the hashes of
each media response; never media bytes. `export_bundle` packs a page's records, WARCs,
media hashes, review decisions and audit excerpt into a zip signed with the Ed25519 key
in `TAKEDOWN_HOME/evidence/signing-key.pem`; `verify_bundle` checks one on its own;
`purge` removes records past retention, audited with counts.

Nothing is imported here: import from the submodule that owns a name
(`crawler.evidence.bundle`, `.datauri`, `.keys`, `.records`, `.tls`, `.verify`, `.warc`), so
that importing one of them (the spider imports `crawler.evidence.tls`) does not load storage
or matching.
"""
