"""Static scheduling metadata: what kind of resource a column generator uses.

Plugin-facing. Metadata never carries queue depth, limits, domains, AIMD state or pressure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

SchedulingKind: TypeAlias = Literal["local", "model", "custom_model"]
_IDENTITY_LENGTH: dict[str, int] = {"local": 2, "model": 4, "custom_model": 4}


class SchedulingMetadataError(Exception):
    """Invalid scheduling metadata.

    With a `fallback`, the resolver uses it and reports the error as a diagnostic; without one,
    resolution fails before any task exists.
    """

    def __init__(
        self,
        code: str,
        message: str,
        fallback: SchedulingMetadata | None = None,
        diagnostics: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fallback = fallback
        self.diagnostics: dict[str, Any] = dict(diagnostics or {})


@dataclass(frozen=True, slots=True)
class SchedulingMetadata:
    """`(kind, identity, weight)`; validated on construction.

    - `local`: identity `("local", resource_name)`, weight a positive int.
    - `model`: identity `("model", provider_name, canonical_model_id, generation_kind)`, weight the
      effective static cap (at least 1).
    - `custom_model`: identity `("custom_model", namespace, resource_name, version)`.
    """

    kind: SchedulingKind
    identity: tuple[str, ...]
    weight: int = 1
    diagnostics: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in _IDENTITY_LENGTH:
            raise SchedulingMetadataError(
                "invalid_kind", f"kind must be one of {sorted(_IDENTITY_LENGTH)}, got {self.kind!r}"
            )
        identity = self.identity
        if not isinstance(identity, tuple) or not all(
            isinstance(part, str) and part for part in identity
        ):
            raise SchedulingMetadataError(
                "non_deterministic_identity",
                f"identity must be a tuple of non-empty strings, got {identity!r}",
            )
        if len(identity) != _IDENTITY_LENGTH[self.kind] or identity[0] != self.kind:
            raise SchedulingMetadataError(
                "invalid_identity",
                f"a {self.kind} identity is ({self.kind!r}, ...) with "
                f"{_IDENTITY_LENGTH[self.kind]} parts, got {identity!r}",
            )
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 1:
            raise SchedulingMetadataError(
                "invalid_weight", f"weight must be a positive int, got {self.weight!r}"
            )

    @classmethod
    def local(cls, resource_name: str = "default", weight: int = 1) -> SchedulingMetadata:
        """Metadata for work that uses only this process (the default)."""
        return cls("local", ("local", resource_name), weight)

    @classmethod
    def custom_model(
        cls, namespace: str, resource_name: str, version: str = "1", weight: int = 1
    ) -> SchedulingMetadata:
        """Metadata for a plugin-defined model resource."""
        return cls("custom_model", ("custom_model", namespace, resource_name, version), weight)


DEFAULT_SCHEDULING_METADATA = SchedulingMetadata.local()
