"""Model-written columns: free text, structured JSON, and rubric judgements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rowloom.config.columns import (
    LLMJudgeColumnConfig,
    LLMStructuredColumnConfig,
    LLMTextColumnConfig,
)
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.errors import NonRetryableTaskError
from rowloom.generators.base import CellContext, ColumnGenerator, compile_template, render
from rowloom.models.resources import ModelResourceCatalog


class LLMTextGenerator(ColumnGenerator):
    """One chat completion per row from the rendered prompt (and system prompt)."""

    def __init__(self, config: LLMTextColumnConfig, catalog: ModelResourceCatalog) -> None:
        super().__init__(config)
        self.alias = config.model_alias
        self._catalog = catalog
        self._prompt = compile_template(config.prompt)
        self._system = compile_template(config.system_prompt) if config.system_prompt else None

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        return self._catalog.scheduling_metadata((self.alias,))

    def prompts(self, row: Mapping[str, Any]) -> tuple[str, str | None]:
        """The rendered (prompt, system prompt) for a row."""
        system = render(self._system, row) if self._system is not None else None
        return render(self._prompt, row), system

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        facade = facade_of(ctx)
        prompt, system = self.prompts(row)
        return await facade.chat(self.alias, prompt, system_prompt=system)


class LLMStructuredGenerator(LLMTextGenerator):
    """JSON valid for `output_format`, with corrective retries as separate calls."""

    config: LLMStructuredColumnConfig

    def __init__(self, config: LLMStructuredColumnConfig, catalog: ModelResourceCatalog) -> None:
        super().__init__(config, catalog)
        self.schema: dict[str, Any] = dict(config.output_format)
        self.max_corrections = config.max_correction_attempts

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        prompt, system = self.prompts(row)
        return await facade_of(ctx).structured(
            self.alias,
            prompt,
            self.schema,
            system_prompt=system,
            max_correction_attempts=self.max_corrections,
            schema_name=self.name,
        )


def judge_schema(config: LLMJudgeColumnConfig) -> dict[str, Any]:
    """The JSON schema of a judge answer: per score (any name), a reasoning and one of the
    score's options (int or str, as declared)."""
    shape = config.output_shape()
    assert shape is not None
    return shape


def normalize_judgement(config: LLMJudgeColumnConfig) -> Any:
    """A function mapping a parsed judge answer's scores onto the declared options: `"4"` or
    `4.0` for option `4`, `"good"` for option `"Good"` (when only one option matches)."""
    options = {s.name: list(s.options) for s in config.scores}

    def key(value: Any) -> str:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).strip().casefold()

    def normalize(answer: Any) -> Any:
        if not isinstance(answer, dict):
            return answer
        out = dict(answer)
        for name, allowed in options.items():
            entry = out.get(name)
            if not isinstance(entry, dict) or "score" not in entry:
                continue
            score = entry["score"]
            if any(type(score) is type(o) and score == o for o in allowed):
                continue
            matches = [o for o in allowed if key(o) == key(score)]
            if len(matches) == 1 and not isinstance(score, bool):
                out[name] = {"reasoning": entry.get("reasoning"), "score": matches[0]}
        return out

    return normalize


def judge_instructions(config: LLMJudgeColumnConfig) -> str:
    """The rubric as text appended to the judge prompt."""
    lines = ["Score the content on each rubric below. Answer in JSON."]
    for s in config.scores:
        options = "; ".join(f"{k}: {v}" for k, v in s.options.items())
        lines.append(f"- {s.name!r}: {s.description} Options: {options}.")
    return "\n".join(lines)


class LLMJudgeGenerator(LLMTextGenerator):
    """Rubric scores `{score_name: {"reasoning": text, "score": option}}` from a judge model."""

    config: LLMJudgeColumnConfig

    def __init__(self, config: LLMJudgeColumnConfig, catalog: ModelResourceCatalog) -> None:
        super().__init__(config, catalog)
        self.schema = judge_schema(config)
        self._rubric = judge_instructions(config)
        self._normalize = normalize_judgement(config)
        self.max_corrections = config.max_correction_attempts

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        prompt, system = self.prompts(row)
        answer = await facade_of(ctx).structured(
            self.alias,
            f"{prompt}\n\n{self._rubric}",
            self.schema,
            system_prompt=system,
            max_correction_attempts=self.max_corrections,
            schema_name=self.name,
            normalize=self._normalize,
        )
        return {
            s.name: {"reasoning": answer[s.name]["reasoning"], "score": answer[s.name]["score"]}
            for s in self.config.scores
        }


def facade_of(ctx: CellContext) -> Any:
    """The cell's model facade; an error when the run has no model access."""
    if ctx.facade is None:
        raise NonRetryableTaskError("no_model_facade", "this run has no model access")
    return ctx.facade
