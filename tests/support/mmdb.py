"""Generated `.mmdb` files for tests (docs/hazards.md): see crawler.net.mmdb_files."""

from crawler.net.mmdb_files import write_asn_db, write_country_db, write_truncated_copy

__all__ = ["write_asn_db", "write_country_db", "write_truncated_copy"]
