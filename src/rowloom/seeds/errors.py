"""Seed errors are config errors: typed, naming the field, raised before any model call."""

from __future__ import annotations

from rowloom.config.errors import ConfigIssue, ConfigValidationError


def seed_error(code: str, field: str | None, message: str) -> ConfigValidationError:
    """A `ConfigValidationError` located at `seed_config` (`field` e.g. `source.path`)."""
    return ConfigValidationError([ConfigIssue(code, "seed_config", field, message)])
