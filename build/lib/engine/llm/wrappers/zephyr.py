"""Zephyr prompts (<|system|>, <|user|>, <|assistant|>, each turn closed by </s>)."""

from __future__ import annotations

from engine.llm.wrappers.base import PromptWrapper, Turn


class Zephyr(PromptWrapper):
    """Zephyr and its fine-tunes, with the inner thoughts as the first field of the JSON call."""

    name = "zephyr"
    inner_thoughts = True
    stop = ("</s>", "<|user|>", "<|system|>", "<|assistant|>")

    def format_turn(self, turn: Turn) -> str:
        return f"<|{turn.role}|>\n{turn.text}</s>\n"

    def reply_start(self) -> str:
        return "<|assistant|>\n"
