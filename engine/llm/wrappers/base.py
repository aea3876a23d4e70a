"""What every prompt wrapper shares.

A wrapper serves models without native function calling: `render` turns the chat
messages and function schemas into one prompt in the model's own format, and
`parse` reads the raw completion back into (inner thoughts, function calls).
The families differ only in how a turn is marked (`format_turn`, `reply_start`)
and in whether the JSON call carries the inner thoughts.

The call the model is asked to write, and the way earlier calls are shown to it:
    {"inner_thoughts": "...", "function": "send_message", "params": {"message": "..."}}
(without "inner_thoughts" for the JSON-only wrappers).

Options:
- simplify_results: a function result is shown as "OK: <message>" rather than its
  JSON packaging (shorter, and small models copy the JSON shape less);
- clean_args: booleans and numbers written as strings are read as values, and a
  request_heartbeat the function does not take is dropped (json_repair.clean_arguments);
- opening_brace: the prompt ends with the "{" of the reply, which steers a model
  into writing JSON from its first token;
- separators: the system text is split into headed sections.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from engine import system
from engine.json_errors import UNPARSABLE
from engine.llm.base import FunctionCall
from engine.llm.json_repair import clean_arguments, parse_call

# The memory section goes last in the system turn, after the functions: it changes only when
# memory is edited (engine/agents.py `memory_section`), and what comes before it never does,
# so a server's prompt cache keeps the instructions and functions across an edit and the
# whole conversation between edits (engine/llm/local.py does the same).
MEMORY_MARKER = "\n### Memory"
RESULT_LABEL = "Function result:"


@dataclasses.dataclass(frozen=True)
class Turn:
    role: str  # "system", "user" or "assistant"
    text: str


class PromptWrapper:
    name = ""
    inner_thoughts = True
    calls_functions = True  # False for wrappers that only serve function-less calls
    stop: tuple[str, ...] = ()
    max_tokens = 512
    temperature = 0.7

    def __init__(
        self,
        *,
        simplify_results: bool = True,
        clean_args: bool = True,
        opening_brace: bool = True,
        separators: bool = True,
    ):
        self.simplify_results = simplify_results
        self.clean_args = clean_args
        self.opening_brace = opening_brace
        self.separators = separators

    # --- what each family defines -----------------------------------------------------------
    def format_turn(self, turn: Turn) -> str:
        raise NotImplementedError

    def reply_start(self) -> str:
        """The text that opens the assistant's reply (the last thing in the prompt)."""
        raise NotImplementedError

    # --- rendering ------------------------------------------------------------------------------
    def render(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> str:
        prompt = "".join(self.format_turn(t) for t in self.turns(messages, functions)) + self.reply_start()
        return prompt + ("{" if self.opening_brace else "")

    def turns(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> list[Turn]:
        out: list[Turn] = []
        memory = ""
        for message in messages:
            role = message["role"]
            content = message.get("content") or ""
            if role == "system" and not out:
                prompt, marker, rest = content.partition(MEMORY_MARKER)
                memory = (marker + rest).strip()
                text = self.system_text(prompt.strip(), functions)
                out.append(Turn("system", f"{text}\n\n{memory}" if memory else text))
            elif role == "assistant":
                out.append(Turn("assistant", self.assistant_text(message)))
            elif role == "tool":
                out.append(Turn("user", self.result_text(content)))
            else:
                out.append(Turn(role, content))
        return out

    def _section(self, title: str, text: str) -> str:
        return f"### {title}\n{text}" if self.separators else text

    def system_text(self, prompt: str, functions: list[dict[str, Any]]) -> str:
        if not functions:
            return prompt
        sections = [
            prompt,
            self._section("Functions", function_list(functions)),
            self._section("How to reply", self.reply_instructions()),
        ]
        return "\n\n".join(s for s in sections if s)

    def call_example(self) -> str:
        thoughts = '"inner_thoughts": "<private thoughts, under 50 words>", ' if self.inner_thoughts else ""
        return '{' + thoughts + '"function": "<function name>", "params": {<its arguments>}}'

    def reply_instructions(self) -> str:
        return (
            "Reply with exactly one JSON object and nothing else:\n"
            f"{self.call_example()}\n"
            "The user only hears what you pass to send_message."
        )

    def call_json(self, thoughts: str | None, name: str, arguments: Any) -> str:
        payload: dict[str, Any] = {"inner_thoughts": thoughts or ""} if self.inner_thoughts else {}
        payload.update(function=name, params=arguments)
        return json.dumps(payload, ensure_ascii=False)

    def assistant_text(self, message: dict[str, Any]) -> str:
        """An earlier reply, written the way the model is asked to write one."""
        calls = message.get("tool_calls") or []
        if not calls:
            return message.get("content") or ""
        lines = []
        for call in calls:
            raw = call["function"].get("arguments") or "{}"
            try:
                arguments = json.loads(raw)
            except UNPARSABLE:
                arguments = raw  # a call that failed to parse is shown as written
            lines.append(self.call_json(message.get("content"), call["function"]["name"], arguments))
        return "\n".join(lines)

    def result_text(self, content: str) -> str:
        payload = system.unpack(content)
        if self.simplify_results and payload and "status" in payload:
            return f"{RESULT_LABEL} {payload['status']}: {payload.get('message', '')}"
        return f"{RESULT_LABEL} {content}"

    # --- parsing ----------------------------------------------------------------------------------
    def parse(self, text: str, functions: list[dict[str, Any]]) -> tuple[str | None, list[FunctionCall]]:
        """(inner thoughts, calls) from the raw completion; json_repair.RepairError when unreadable."""
        if self.opening_brace and not text.lstrip().startswith("{"):
            text = "{" + text  # the brace was written by the prompt
        call = parse_call(text, functions)
        arguments = clean_arguments(call.name, call.arguments, functions) if self.clean_args else call.arguments
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        return call.thoughts or None, [FunctionCall(call_id, call.name, json.dumps(arguments, ensure_ascii=False))]


def function_list(functions: list[dict[str, Any]]) -> str:
    """The functions as plain text: name and description, then one line per argument."""
    blocks = []
    for fn in functions:
        parameters = fn.get("parameters") or {}
        required = set(parameters.get("required", []))
        lines = [f"{fn['name']}: {fn.get('description', '').strip()}"]
        for name, schema in (parameters.get("properties") or {}).items():
            kind = schema.get("type", "any")
            if "enum" in schema:
                kind = "one of " + ", ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
            need = "required" if name in required else "optional"
            lines.append(f"  {name} ({kind}; {need}): {schema.get('description', '').strip()}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
