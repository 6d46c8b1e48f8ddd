"""Reasoning text inlined in an answer: `<think>...</think>` blocks.

Servers without a reasoning parser (llama.cpp, vLLM without `--reasoning-parser`, some
OpenAI-compatible proxies) send a reasoning model's thoughts inside the content. Chat templates
that open the block in the prompt send only the closing tag.
"""

from __future__ import annotations

import re

__all__ = ["split_reasoning"]

_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
_OPEN = "<think>"
_CLOSE = "</think>"


def split_reasoning(text: str) -> tuple[str, str | None]:
    """`(answer, reasoning)`: the text without its think blocks, and their joined contents
    (None when there are none). An unclosed block (a truncated answer) is all reasoning; a
    closing tag without an opening one ends reasoning that began with the answer."""
    lowered = text.lower()
    if _OPEN not in lowered and _CLOSE not in lowered:
        return text, None
    thoughts = [m.strip() for m in _BLOCK.findall(text)]
    rest = _BLOCK.sub("", text)
    low_rest = rest.lower()
    if _OPEN in low_rest:  # unclosed: everything after it is reasoning
        at = low_rest.index(_OPEN)
        thoughts.append(rest[at + len(_OPEN) :].strip())
        rest = rest[:at]
    elif _CLOSE in low_rest:  # the block was opened by the chat template
        at = low_rest.index(_CLOSE)
        thoughts.insert(0, rest[:at].strip())
        rest = rest[at + len(_CLOSE) :]
    reasoning = "\n\n".join(t for t in thoughts if t)
    return rest.strip(), reasoning or None
