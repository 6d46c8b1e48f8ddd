"""Seed configs: where seed rows come from and which of them a run reads, in what order.

The names follow Data Designer's `seed_config` (`source` with a `seed_type`, `sampling_strategy`,
`selection_strategy`), so its configs load unchanged. Every column of the seed becomes a dataset
column without being declared; a declared `seed_dataset` column only renames or drops one.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    SerializeAsAny,
    Tag,
    field_serializer,
    field_validator,
    model_validator,
)

from rowloom.config.plugins import PLUGIN_TAG, plugin_config_parser, union_tag

SamplingStrategy = Literal["ordered", "shuffle"]
SeedFileFormat = Literal["parquet", "csv", "jsonl", "json"]

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexRange(_Strict):
    """Rows `start`..`end` of the seed (both inclusive, zero-based)."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> IndexRange:
        if self.start > self.end:
            raise ValueError("'start' must be less than or equal to 'end'")
        return self

    @property
    def size(self) -> int:
        """Rows in the range."""
        return self.end - self.start + 1


class PartitionBlock(_Strict):
    """Partition `index` (zero-based) of `num_partitions` near-equal contiguous blocks; the last
    block takes the remainder."""

    index: int = Field(0, ge=0)
    num_partitions: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _in_range(self) -> PartitionBlock:
        if self.index >= self.num_partitions:
            raise ValueError("'index' must be less than 'num_partitions'")
        return self

    def to_index_range(self, num_rows: int) -> IndexRange:
        """The rows this block covers in a seed of `num_rows` rows."""
        if self.num_partitions > num_rows:
            raise ValueError(
                f"num_partitions {self.num_partitions} is more than the seed's {num_rows} rows"
            )
        size = num_rows // self.num_partitions
        start = self.index * size
        last = self.index == self.num_partitions - 1
        return IndexRange(start=start, end=num_rows - 1 if last else start + size - 1)


class _PathSource(_Strict):
    path: str = Field(description="a file, a glob or a folder; relative to the working directory")

    @field_validator("path")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("path must not be empty")
        return value


class LocalFileSeedSource(_PathSource):
    """Parquet, CSV, JSONL or JSON files: one file, a glob (`data/*.parquet`, `**` allowed) or a
    folder (every data file in it, sorted by path). All files share one format."""

    seed_type: Literal["local"] = "local"
    format: SeedFileFormat | None = Field(None, description="inferred from the extension if unset")

    @classmethod
    def from_dataframe(cls, df: Any, path: str | Path) -> LocalFileSeedSource:
        """Write a pandas DataFrame or pyarrow Table to parquet at `path`; a source reading it
        (a config with it can be saved, unlike one with a `df` source)."""
        table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
        pq.write_table(table, path)
        return cls(path=str(path))


class HuggingFaceSeedSource(_PathSource):
    """Files of a Hugging Face dataset: `datasets/ORG/NAME/PATH` (globs allowed; an `hf://` prefix
    is accepted). `token` is a token or the name of the variable holding one (default `HF_TOKEN`);
    `endpoint` defaults to `HF_ENDPOINT` or the public Hub."""

    seed_type: Literal["hf"] = "hf"
    format: SeedFileFormat | None = None
    token: SecretStr | None = Field(None, repr=False)
    endpoint: str | None = None

    @field_serializer("token")
    def _hide_token(self, value: SecretStr | None) -> str | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        return secret if _ENV_NAME.match(secret) else None  # a variable name is not a secret

    def resolve_token(self) -> str | None:
        """The token: the named variable's value, the literal, or None (then `HF_TOKEN`)."""
        if self.token is None:
            return None
        secret = self.token.get_secret_value()
        if _ENV_NAME.match(secret):
            return os.environ.get(secret)
        return secret

    @property
    def repo_path(self) -> str:
        """The path without any `hf://` prefix."""
        return self.path.removeprefix("hf://").lstrip("/")


class DataFrameSeedSource(_Strict):
    """A pandas DataFrame or pyarrow Table from the Python API (not serialisable to a file)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    seed_type: Literal["df"] = "df"
    df: Any = Field(exclude=True, repr=False)

    @field_validator("df")
    @classmethod
    def _tabular(cls, value: Any) -> Any:
        if isinstance(value, pa.Table):
            return value
        if type(value).__name__ == "DataFrame" and hasattr(value, "columns"):
            return value
        raise ValueError(f"df must be a pandas DataFrame or a pyarrow Table, not {type(value)}")

    def table(self) -> pa.Table:
        """The rows as a pyarrow Table (index dropped)."""
        if isinstance(self.df, pa.Table):
            return self.df
        return pa.Table.from_pandas(self.df, preserve_index=False)

    def content_hash(self) -> str:
        """A hash of the rows, so a changed DataFrame changes the config fingerprint."""
        digest = hashlib.sha256()
        sink = pa.BufferOutputStream()
        table = self.table()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue().to_pybytes())
        return digest.hexdigest()[:32]


class _FolderSource(_PathSource):
    file_pattern: str = Field("*", description="file-name pattern (basename only)")
    recursive: bool = True

    @field_validator("file_pattern")
    @classmethod
    def _basename(cls, value: str) -> str:
        return _file_name_pattern(value)


def _file_name_pattern(value: str) -> str:
    if not value.strip():
        raise ValueError("file_pattern must not be empty")
    if "/" in value or "\\" in value:
        raise ValueError("file_pattern matches file names, not paths")
    return value


class DirectorySeedSource(_FolderSource):
    """One row per matching file: `source_kind`, `source_path`, `relative_path`, `file_name`."""

    seed_type: Literal["directory"] = "directory"


class FileContentsSeedSource(_FolderSource):
    """One row per matching file, as `directory` plus its text in `content`."""

    seed_type: Literal["file_contents"] = "file_contents"
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value


AgentRolloutFormat = Literal["atif", "claude_code", "codex", "hermes_agent", "pi_coding_agent"]
AGENT_ROLLOUT_DEFAULTS: dict[str, tuple[str | None, str]] = {
    "atif": (None, "*.json"),
    "claude_code": ("~/.claude/projects", "*.jsonl"),
    "codex": ("~/.codex/sessions", "*.jsonl"),
    "hermes_agent": ("~/.hermes/sessions", "*.json*"),
    "pi_coding_agent": ("~/.pi/agent/sessions", "*.jsonl"),
}
"""Each rollout format's default folder (None: `path` is required) and file pattern."""


class AgentRolloutSeedSource(_Strict):
    """Coding-agent traces as seed rows (Data Designer's `agent_rollout`): one row per session
    file of `format`, with the conversation normalised to chat messages (`messages`) and its
    metadata (`trace_id`, `cwd`, `started_at`, ..., `source_meta`).

    `path` defaults to the agent's own session folder (`~/.claude/projects`, `~/.codex/sessions`,
    `~/.hermes/sessions`, `~/.pi/agent/sessions`; required for `atif`); `file_pattern` (file
    names, default per format) and `recursive` pick the files in it.
    """

    seed_type: Literal["agent_rollout"] = "agent_rollout"
    format: AgentRolloutFormat
    path: str | None = None
    file_pattern: str | None = None
    recursive: bool = True

    @field_validator("path")
    @classmethod
    def _non_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("path must not be empty")
        return value

    @field_validator("file_pattern")
    @classmethod
    def _basename(cls, value: str | None) -> str | None:
        return None if value is None else _file_name_pattern(value)

    @model_validator(mode="after")
    def _path_for_atif(self) -> AgentRolloutSeedSource:
        if self.path is None and AGENT_ROLLOUT_DEFAULTS[self.format][0] is None:
            raise ValueError(f"path is required for format {self.format!r}")
        return self

    @property
    def folder(self) -> str:
        """`path`, else the format's default folder."""
        return self.path or AGENT_ROLLOUT_DEFAULTS[self.format][0] or ""

    @property
    def pattern(self) -> str:
        """`file_pattern`, else the format's default."""
        return self.file_pattern or AGENT_ROLLOUT_DEFAULTS[self.format][1]


BUILTIN_SEED_TYPES: dict[str, type[BaseModel]] = {
    "local": LocalFileSeedSource,
    "hf": HuggingFaceSeedSource,
    "df": DataFrameSeedSource,
    "directory": DirectorySeedSource,
    "file_contents": FileContentsSeedSource,
    "agent_rollout": AgentRolloutSeedSource,
}
SeedSource = Annotated[
    Annotated[LocalFileSeedSource, Tag("local")]
    | Annotated[HuggingFaceSeedSource, Tag("hf")]
    | Annotated[DataFrameSeedSource, Tag("df")]
    | Annotated[DirectorySeedSource, Tag("directory")]
    | Annotated[FileContentsSeedSource, Tag("file_contents")]
    | Annotated[AgentRolloutSeedSource, Tag("agent_rollout")]
    | Annotated[
        SerializeAsAny[BaseModel],
        BeforeValidator(plugin_config_parser("seed_reader")),
        Tag(PLUGIN_TAG),
    ],
    Discriminator(union_tag("seed_reader", BUILTIN_SEED_TYPES, BaseModel)),
]
"""Any seed source: a built-in `seed_type`, or one an installed `seed_reader` plugin provides
(its reader's `read(source, base_dir)` returns a pyarrow Table or pandas DataFrame)."""


class SeedConfig(_Strict):
    """A seed: its `source`, the `sampling_strategy` and an optional `selection_strategy`.

    `ordered` reads the selected rows in order, `shuffle` in a seeded random order; both cycle
    when a run needs more rows than the selection has. `with_replacement` draws every row
    independently instead (rows may repeat before the selection is used up).
    """

    source: SeedSource
    sampling_strategy: SamplingStrategy = "ordered"
    selection_strategy: IndexRange | PartitionBlock | None = None
    with_replacement: bool = False

    def partition(self, index: int, num_partitions: int) -> SeedConfig:
        """This seed restricted to block `index` of `num_partitions` of its current selection.

        The unit a distributed run hands to a worker: blocks are contiguous, disjoint and cover
        the selection. Over an `IndexRange` the block is computed now; over a whole seed it stays
        a `PartitionBlock`, resolved against the seed's row count when it is opened.
        """
        block = PartitionBlock(index=index, num_partitions=num_partitions)
        current = self.selection_strategy
        if current is None:
            return self.model_copy(update={"selection_strategy": block})
        if isinstance(current, IndexRange):
            sub = block.to_index_range(current.size)
            shifted = IndexRange(start=current.start + sub.start, end=current.start + sub.end)
            return self.model_copy(update={"selection_strategy": shifted})
        raise ValueError(
            f"this seed is already partition {current.index} of {current.num_partitions}; "
            "partition a seed whose selection is an IndexRange (or none) instead"
        )
