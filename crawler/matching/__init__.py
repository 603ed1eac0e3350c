"""Hashes to matches to review candidates; hash lists, their settings and exchanges."""
