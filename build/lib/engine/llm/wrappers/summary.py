"""The wrapper for calls without functions (summarization): an instruction, its input, a plain-text reply.

Any instruction-tuned model follows this layout well enough for a short summary,
whatever its own chat format, and the reply is taken as text, not as a call.
"""

from __future__ import annotations

from typing import Any

from engine.llm.base import FunctionCall
from engine.llm.json_repair import END_TOKENS
from engine.llm.wrappers.base import PromptWrapper


class SimpleSummary(PromptWrapper):
    name = "simple-summary"
    inner_thoughts = False
    calls_functions = False
    stop = ("\n### ",)
    max_tokens = 320  # the summary asks for at most 100 words
    temperature = 0.3

    def render(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> str:
        instruction = "\n\n".join(m.get("content") or "" for m in messages if m["role"] == "system")
        given = "\n\n".join(m.get("content") or "" for m in messages if m["role"] != "system")
        return f"### Instruction:\n{instruction.strip()}\n\n### Input:\n{given.strip()}\n\n### Response:\n"

    def parse(self, text: str, functions: list[dict[str, Any]]) -> tuple[str | None, list[FunctionCall]]:
        for token in END_TOKENS:
            text = text.replace(token, "")
        return text.strip() or None, []
