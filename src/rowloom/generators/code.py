"""`llm_code` columns: code in a language, extracted from the model's fenced block.

As Data Designer does: the answer is parsed as CommonMark, the last code block is taken, and a
block tagged with another language is an error (one of a few common aliases is accepted, e.g.
`py` for python); the code is stripped. A missing or mismatched block gets a corrective
follow-up, up to `max_correction_attempts`, each its own request attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markdown_it import MarkdownIt

from rowloom.config.code_lang import code_dialect, code_language
from rowloom.config.columns import LLMCodeColumnConfig
from rowloom.errors import NonRetryableTaskError
from rowloom.generators.base import CellContext
from rowloom.generators.llm import LLMTextGenerator, facade_of
from rowloom.generators.media import MediaStore
from rowloom.models.clients.base import Message
from rowloom.models.reasoning import split_reasoning
from rowloom.models.resources import ModelResourceCatalog

_MARKDOWN = MarkdownIt("commonmark")
_ALIASES = {
    "py": "python",
    "python3": "python",
    "sh": "bash",
    "shell": "bash",
    "zsh": "bash",
    "js": "javascript",
    "node": "javascript",
    "ts": "typescript",
    "c++": "cpp",
    "cxx": "cpp",
    "cs": "csharp",
    "c#": "csharp",
    "golang": "go",
    "rs": "rust",
    "rb": "ruby",
    "kt": "kotlin",
    "postgres": "sql",
    "postgresql": "sql",
    "mysql": "sql",
    "sqlite": "sql",
    "tsql": "sql",
    "bigquery": "sql",
}


def code_instruction(code_lang: str) -> str:
    """The sentence appended to an `llm_code` prompt (the simulated provider reads it)."""
    lang = code_language(code_lang)
    dialect = f" (dialect: {code_lang})" if code_dialect(code_lang) else ""
    return f"Return only the code in one ```{lang} block{dialect}."


def extract_code(text: str, code_lang: str) -> tuple[str | None, str]:
    """`(code, "")` from the answer's last code block, or `(None, problem)`."""
    wanted = code_language(code_lang)
    blocks = [t for t in _MARKDOWN.parse(text) if t.type in ("fence", "code_block")]
    if not blocks:
        return None, f"no code block; answer with the code in one ```{wanted} block"
    block = blocks[-1]
    tag = block.info.strip().split(maxsplit=1)[0].lower() if block.info.strip() else ""
    if tag and _ALIASES.get(tag, tag) != wanted:
        return None, f"the code block is tagged {tag!r}, not {wanted!r}"
    return block.content.strip(), ""


class LLMCodeGenerator(LLMTextGenerator):
    """Code in `code_lang` from a chat model; the value is the extracted code."""

    config: LLMCodeColumnConfig

    def __init__(
        self,
        config: LLMCodeColumnConfig,
        catalog: ModelResourceCatalog,
        media: MediaStore | None = None,
    ) -> None:
        super().__init__(config, catalog, media)
        self.code_lang: str = config.code_lang
        self.max_corrections = config.max_correction_attempts
        self._instruction = code_instruction(config.code_lang)

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        facade = facade_of(ctx)
        tools = self.tools(facade)
        messages: list[Message] = list(await self.messages(row, f"\n\n{self._instruction}"))
        problem = ""
        for attempt in range(self.max_corrections + 1):
            conversation = await facade.converse(self.alias, messages, tools=tools)
            answer = split_reasoning(conversation.response.text)[0]
            code, problem = extract_code(answer, self.code_lang)
            if code is not None:
                return self.finish(code, conversation)
            if attempt < self.max_corrections:
                messages = [
                    *conversation.messages[:-1],
                    {"role": "assistant", "content": answer[:4000]},
                    {"role": "user", "content": f"Your answer was not usable: {problem}."},
                ]
        raise NonRetryableTaskError(
            "invalid_code_output",
            f"no usable {self.code_lang} code after {self.max_corrections} correction(s): "
            f"{problem}",
        )
