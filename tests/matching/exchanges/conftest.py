"""The review app's fixtures, for the feedback-on-reject test."""

from tests.support.review import (  # noqa: F401 - fixtures, used by name
    app,
    cheap_password_hashing,
    clock,
    users,
)
