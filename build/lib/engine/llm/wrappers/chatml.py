"""ChatML prompts (<|im_start|>role ... <|im_end|>): Qwen, Hermes, Dolphin, SmolLM2 and many more."""

from __future__ import annotations

from engine.llm.wrappers.base import PromptWrapper, Turn


class ChatML(PromptWrapper):
    """Generic ChatML, with the inner thoughts as the first field of the JSON call."""

    name = "chatml"
    inner_thoughts = True
    stop = ("<|im_end|>", "<|im_start|>")

    def format_turn(self, turn: Turn) -> str:
        return f"<|im_start|>{turn.role}\n{turn.text}<|im_end|>\n"

    def reply_start(self) -> str:
        return "<|im_start|>assistant\n"


class Dolphin(ChatML):
    """Dolphin fine-tunes (ChatML) answering with the JSON call alone."""

    name = "dolphin"
    inner_thoughts = False
