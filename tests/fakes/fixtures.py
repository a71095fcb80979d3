"""Pytest fixtures for the fakes. Import them explicitly where used:

from tests.fakes.fixtures import kite_fake  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.kite_server import KiteFake


@pytest.fixture
def kite_fake() -> Iterator[KiteFake]:
    """A running fake Kite server (api_key "kite_key", api_secret "kite_secret", user "AB1234"),
    rate limits on, market open, stopped after the test."""
    fake = KiteFake(api_key="kite_key", api_secret="kite_secret", user_id="AB1234")
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
