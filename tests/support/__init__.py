"""Helpers shared by the test packages: site kits, synthetic media, fake services, seed data.

The only test code that tests import: a test module never imports another test module, and
what two test packages need goes here (a loopback HTTP server, threads, crawl commands, ...).
"""
