"""Fixtures for the review app tests; the helpers live in tests/support/review.py and
tests/support/browser.py (shared with other test folders)."""

from tests.support.browser import page, served  # noqa: F401 - fixtures, used by name
from tests.support.review import (  # noqa: F401 - fixtures, used by name
    app,
    cheap_password_hashing,
    clock,
    media_server,
    users,
)
