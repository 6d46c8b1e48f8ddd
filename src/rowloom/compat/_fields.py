"""Walking a Data Designer mapping field by field: every field is either mapped, known to be
inert at its default value, or reported. Nothing is dropped silently."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rowloom.config.errors import ConfigIssue, ConfigValidationError

NOT_SUPPORTED = "dd_not_supported"
UNKNOWN_FIELD = "dd_unknown_field"
INVALID = "dd_invalid"
MISSING = "dd_missing_field"

_REQUIRED = object()


@dataclass
class Issues:
    """Every problem found while mapping one config, raised together at the end."""

    found: list[ConfigIssue] = field(default_factory=list)

    def add(self, code: str, location: str, field_name: str | None, message: str) -> None:
        """Record one problem."""
        self.found.append(ConfigIssue(code, location, field_name, message))

    def raise_if_any(self) -> None:
        """Raise `ConfigValidationError` when anything was recorded."""
        if self.found:
            raise ConfigValidationError(self.found)


class Fields:
    """One Data Designer object being mapped: `location` names it (e.g. `columns.review`),
    `prefix` is the dotted path of this object inside it (e.g. `params`)."""

    def __init__(
        self, data: Mapping[str, Any], location: str, issues: Issues, prefix: str = ""
    ) -> None:
        self.data = data
        self.location = location
        self.issues = issues
        self.prefix = prefix
        self._seen: set[str] = set()

    def path(self, key: str) -> str:
        """The dotted field path of `key` within the location."""
        return f"{self.prefix}.{key}" if self.prefix else key

    def child(self, key: str, value: Mapping[str, Any]) -> Fields:
        """The nested object at `key`."""
        return Fields(value, self.location, self.issues, self.path(key))

    def has(self, key: str) -> bool:
        """Whether the field is present."""
        return key in self.data

    def get(self, key: str, default: Any = _REQUIRED) -> Any:
        """The value of `key` (marking it mapped); a missing required field is reported."""
        self._seen.add(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            self.issues.add(MISSING, self.location, self.path(key), "required field is missing")
            return None
        return default

    def inert(self, key: str, default: Any, why: str) -> None:
        """A field rowloom has no counterpart for: fine at its default, reported otherwise."""
        value = self.get(key, default)
        if value != default:
            self.not_supported(key, f"{why} (value {short(value)})")

    def not_supported(self, key: str, why: str) -> None:
        """Report a field rowloom cannot run yet."""
        self._seen.add(key)
        self.issues.add(NOT_SUPPORTED, self.location, self.path(key), f"not supported yet: {why}")

    def invalid(self, key: str, why: str) -> None:
        """Report a field whose value is wrong."""
        self._seen.add(key)
        self.issues.add(INVALID, self.location, self.path(key), why)

    def expect_type(self, key: str, value: Any, kinds: type | tuple[type, ...], what: str) -> bool:
        """True when `value` is of `kinds`; reports it otherwise."""
        if isinstance(value, kinds):
            return True
        self.invalid(key, f"must be {what}, got {short(value)}")
        return False

    def done(self, allowed: Callable[[str], bool] | None = None) -> None:
        """Report every field that was not looked at (unknown to Data Designer for this type)."""
        for key in self.data:
            if key in self._seen or (allowed is not None and allowed(str(key))):
                continue
            self.issues.add(
                UNKNOWN_FIELD,
                self.location,
                self.path(str(key)),
                "unknown field for this Data Designer type",
            )

    def remaining(self) -> Iterator[tuple[str, Any]]:
        """Fields not looked at yet."""
        for key, value in self.data.items():
            if key not in self._seen:
                yield str(key), value


def short(value: Any) -> str:
    """`repr(value)`, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
