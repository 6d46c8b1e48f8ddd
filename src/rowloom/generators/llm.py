"""Model-written columns: free text, structured JSON, and rubric judgements."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from rowloom.config.columns import (
    REASONING_CONTENT_SUFFIX,
    TRACE_SUFFIX,
    LLMJudgeColumnConfig,
    LLMStructuredColumnConfig,
    LLMTextColumnConfig,
)
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.errors import NonRetryableTaskError
from rowloom.generators.base import (
    CellContext,
    CellOutput,
    ColumnGenerator,
    compile_template,
    render,
)
from rowloom.generators.media import MediaStore, image_parts
from rowloom.models.facade import Conversation, ModelFacade, ToolBox, build_messages
from rowloom.models.reasoning import split_reasoning
from rowloom.models.resources import ModelResourceCatalog
from rowloom.models.trace import final_reasoning, trace_messages


class LLMTextGenerator(ColumnGenerator):
    """One chat exchange per row: the rendered prompt (with its images), optionally using the
    column's tools; inline `<think>` blocks never reach the value."""

    config: LLMTextColumnConfig

    def __init__(
        self,
        config: LLMTextColumnConfig,
        catalog: ModelResourceCatalog,
        media: MediaStore | None = None,
    ) -> None:
        super().__init__(config)
        self.alias = config.model_alias
        self._catalog = catalog
        self._media = media or MediaStore(None)
        self._prompt = compile_template(config.prompt)
        self._system = compile_template(config.system_prompt) if config.system_prompt else None

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        return self._catalog.scheduling_metadata((self.alias,))

    def prompts(self, row: Mapping[str, Any]) -> tuple[str, str | None]:
        """The rendered (prompt, system prompt) for a row."""
        system = render(self._system, row) if self._system is not None else None
        return render(self._prompt, row), system

    async def messages(self, row: Mapping[str, Any], suffix: str = "") -> list[dict[str, Any]]:
        """The request's messages for a row: system prompt, prompt (+ `suffix`) and images
        (image files are read in a worker thread, off the event loop)."""
        prompt, system = self.prompts(row)
        contexts = self.config.multi_modal_context
        images = (
            await asyncio.to_thread(image_parts, contexts, row, self._media) if contexts else []
        )
        return build_messages(prompt + suffix, system, images)

    def tools(self, facade: ModelFacade) -> ToolBox | None:
        """The column's tools, when it has a `tool_alias`."""
        alias = self.config.tool_alias
        return facade.toolbox(alias) if alias is not None else None

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        facade = facade_of(ctx)
        conversation = await facade.converse(
            self.alias, await self.messages(row), tools=self.tools(facade)
        )
        return self.finish(split_reasoning(conversation.response.text)[0], conversation)

    def finish(self, value: Any, conversation: Conversation) -> Any:
        """The cell's value, with `<name>__reasoning_content` and `<name>__trace` when the
        column keeps them."""
        extras: dict[str, Any] = {}
        if self.config.extract_reasoning_content:
            key = f"{self.name}{REASONING_CONTENT_SUFFIX}"
            extras[key] = final_reasoning(conversation.response)
        mode = self.config.with_trace
        if mode is not None and mode != "none":
            extras[f"{self.name}{TRACE_SUFFIX}"] = trace_messages(conversation.messages, mode)
        return CellOutput(value, extras) if extras else value


class _SchemaGenerator(LLMTextGenerator):
    """A JSON answer valid for `schema`, with corrective follow-ups as separate calls; the
    prompt gets `suffix` (a judge's rubric)."""

    schema: dict[str, Any]
    suffix: str = ""
    max_corrections: int = 2
    normalize: Callable[[Any], Any] | None = None

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        facade = facade_of(ctx)
        value, conversation = await facade.structured_conversation(
            self.alias,
            await self.messages(row, self.suffix),
            self.schema,
            max_correction_attempts=self.max_corrections,
            schema_name=self.name,
            tools=self.tools(facade),
            normalize=self.normalize,
        )
        return self.finish(self.shape(value), conversation)

    def shape(self, value: Any) -> Any:
        """The cell's value from the schema-valid answer (as is by default)."""
        return value


class LLMStructuredGenerator(_SchemaGenerator):
    """JSON valid for `output_format`."""

    config: LLMStructuredColumnConfig

    def __init__(
        self,
        config: LLMStructuredColumnConfig,
        catalog: ModelResourceCatalog,
        media: MediaStore | None = None,
    ) -> None:
        super().__init__(config, catalog, media)
        self.schema = dict(config.output_format)
        self.max_corrections = config.max_correction_attempts


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


class LLMJudgeGenerator(_SchemaGenerator):
    """Rubric scores `{score_name: {"reasoning": text, "score": option}}` from a judge model."""

    config: LLMJudgeColumnConfig

    def __init__(
        self,
        config: LLMJudgeColumnConfig,
        catalog: ModelResourceCatalog,
        media: MediaStore | None = None,
    ) -> None:
        super().__init__(config, catalog, media)
        self.schema = judge_schema(config)
        self.suffix = f"\n\n{judge_instructions(config)}"
        self.normalize = normalize_judgement(config)
        self.max_corrections = config.max_correction_attempts

    def shape(self, value: Any) -> Any:
        """Only the declared scores, each as `{"reasoning", "score"}`."""
        return {
            s.name: {"reasoning": value[s.name]["reasoning"], "score": value[s.name]["score"]}
            for s in self.config.scores
        }


def facade_of(ctx: CellContext) -> ModelFacade:
    """The cell's model facade; an error when the run has no model access."""
    if ctx.facade is None:
        raise NonRetryableTaskError("no_model_facade", "this run has no model access")
    return ctx.facade
