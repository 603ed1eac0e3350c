"""Helpers shared by the test packages: site kits, synthetic media, fake services, seed data."""
