"""The exit codes of every `rowloom` command (see docs/reliability.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """0: done (every requested row written); 1: the run stopped or rows were dropped;
    2: bad config, arguments or filesystem, before any model call."""

    OK = 0
    FAILED = 1
    INVALID = 2
