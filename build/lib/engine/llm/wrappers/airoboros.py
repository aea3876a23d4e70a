"""Airoboros-style prompts: "USER: ... ASSISTANT: ...", as Airoboros 2.x and many Llama-2 fine-tunes expect."""

from __future__ import annotations

from engine.llm.wrappers.base import PromptWrapper, Turn


class Airoboros(PromptWrapper):
    """The function list in the system text; the reply is the JSON call alone."""

    name = "airoboros"
    inner_thoughts = False
    stop = ("\nUSER:", "\nASSISTANT:", "</s>")

    def format_turn(self, turn: Turn) -> str:
        if turn.role == "system":
            return f"{turn.text}\n\n"
        return f"{turn.role.upper()}: {turn.text}\n"

    def reply_start(self) -> str:
        return "ASSISTANT: "


class AiroborosInnerMonologue(Airoboros):
    """As airoboros, with the inner thoughts as the first field of the JSON call."""

    name = "airoboros-inner-monologue"
    inner_thoughts = True
