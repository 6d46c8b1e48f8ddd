"""Typed configuration errors. Each issue names the column (or model/provider) and the field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config: where (`location`, e.g. `columns.draft`), which `field`, what."""

    code: str
    location: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.location + (f".{self.field}" if self.field else "")
        return f"{where}: {self.message} [{self.code}]"


class ConfigError(Exception):
    """Base class for every configuration error; raised before any model call."""


class ConfigFileError(ConfigError):
    """A config file that cannot be read or parsed (missing, not YAML/JSON, not a mapping)."""


class ConfigValidationError(ConfigError):
    """A config that parses but is invalid; `issues` lists every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        lines = "\n".join(f"  - {issue}" for issue in self.issues)
        super().__init__(f"invalid dataset config ({len(self.issues)} issue(s)):\n{lines}")

    @property
    def codes(self) -> tuple[str, ...]:
        """The issue codes, in order."""
        return tuple(i.code for i in self.issues)


def _issue(code: str, location: str, field: str | None, message: str) -> ConfigValidationError:
    return ConfigValidationError([ConfigIssue(code, location, field, message)])
