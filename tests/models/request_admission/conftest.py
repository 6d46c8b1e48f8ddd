"""Fixtures for request-admission tests."""

from __future__ import annotations

import pytest
from ra_support import MakeHarness, harness_factory


@pytest.fixture
def make() -> MakeHarness:
    """Build a ManualClock-driven controller (see `ra_support.harness_factory`)."""
    return harness_factory()
