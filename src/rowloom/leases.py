"""What releasing a lease answers, for both admission layers (task leases, request leases).

Both controllers promise the same thing: `release` never raises, returns capacity exactly once
per lease, and answers a duplicate, stale, foreign or unknown lease with `released=False`, a
reason and diagnostics, adding no capacity. This module imports nothing from rowloom.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

_NO_DIAGNOSTICS: Final[Mapping[str, Any]] = MappingProxyType({})


class ReleaseReason(enum.StrEnum):
    """Why a release did or did not return capacity."""

    RELEASED = "released"
    DUPLICATE = "duplicate"
    STALE_LEASE = "stale_lease"
    WRONG_GENERATION = "wrong_generation"
    UNKNOWN_LEASE = "unknown_lease"


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    """The answer of `release`: `released` is True exactly once per lease, with `released`."""

    released: bool
    reason: ReleaseReason
    diagnostics: Mapping[str, Any] = field(default_factory=lambda: _NO_DIAGNOSTICS)
