"""The `completions` provider: models without function calling, behind any `/v1/completions` server.

llama.cpp's server, vLLM, LM Studio, Ollama, koboldcpp and text-generation-webui
all offer OpenAI's text-completions endpoint. A prompt wrapper
(engine/llm/wrappers) renders the messages and functions into one prompt in the
model's format and reads the raw text back into a call, repairing broken JSON
(engine/llm/json_repair.py). With `grammar` on, the request also carries a GBNF
grammar (engine/llm/grammars) so a server that honours it (llama.cpp) can only
produce a well-formed call; servers that do not know the field ignore it.

The prompt is counted before it is sent: one that does not leave room for the
reply raises ContextWindowExceeded, which makes the agent summarize.

A reply that cannot be read as a call is asked for again, up to PARSE_ATTEMPTS
requests in all. After that the provider raises a retryable LLMError, so the
agent loop reports it as an error event (the user can retry) rather than
inventing a call the model never made.
"""

from __future__ import annotations

import logging
from typing import Any

import openai

from engine import tokens
from engine.llm import grammars
from engine.llm.base import Completion, ContextWindowExceeded, LLMError
from engine.llm.json_repair import RepairError
from engine.llm.openai_provider import classify
from engine.llm.wrappers import SUMMARY_WRAPPER, get_wrapper, resolve

log = logging.getLogger(__name__)

PARSE_ATTEMPTS = 3


class CompletionsProvider:
    def __init__(
        self,
        client: openai.OpenAI | None,
        model: str,
        context_window: int,
        *,
        wrapper: str | None = None,
        grammar: bool | str = False,
        temperature: float | None = None,
        max_tokens: int | None = None,
        wrapper_options: dict[str, bool] | None = None,
    ):
        """`grammar`: False (off), True (generated for the current functions), or a ready grammar's name."""
        self._client = client
        self.model = model
        self.context_window = context_window
        self.wrapper = get_wrapper(wrapper, **(wrapper_options or {}))
        if resolve(wrapper)[1] and not grammar:
            grammar = True  # MemGPT's "-grammar" wrapper names meant exactly this
        self.summary_wrapper = get_wrapper(SUMMARY_WRAPPER)
        if isinstance(grammar, str):
            grammars.load(grammar)  # an unknown name fails here, at configuration time
        self.grammar = grammar
        self.temperature = temperature
        self.max_tokens = max_tokens

    @property
    def call_timeout(self) -> float | None:
        """Seconds one request may take (the client's timeout), for the deadline over retries."""
        timeout = self._client.timeout if self._client is not None else None
        return float(timeout) if isinstance(timeout, (int, float)) else None

    def _grammar(self, functions: list[dict[str, Any]]) -> str | None:
        if not self.grammar or not functions:
            return None
        opened = self.wrapper.opening_brace
        if isinstance(self.grammar, str):
            return grammars.load(self.grammar, opened=opened)
        return grammars.grammar_for(functions, self.wrapper.inner_thoughts, opened=opened)

    def complete(self, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> Completion:
        wrapper = self.wrapper if functions else self.summary_wrapper
        prompt = wrapper.render(messages, functions)
        max_tokens = self.max_tokens or wrapper.max_tokens
        prompt_tokens = tokens.count(prompt)
        if prompt_tokens + max_tokens > self.context_window:
            raise ContextWindowExceeded(
                f"The prompt needs {prompt_tokens} tokens and the reply up to {max_tokens}, "
                f"more than the model's context window of {self.context_window}."
            )
        request: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": wrapper.temperature if self.temperature is None else self.temperature,
            "stop": list(wrapper.stop),
        }
        grammar = self._grammar(functions)
        if grammar:
            request["extra_body"] = {"grammar": grammar}

        used_prompt = used_completion = 0
        error: RepairError | None = None
        text = ""
        for attempt in range(1, PARSE_ATTEMPTS + 1):
            text, model, p, c = self._request(request, prompt_tokens)
            used_prompt += p
            used_completion += c
            try:
                content, calls = wrapper.parse(text, functions)
            except RepairError as e:
                error = e
                log.info("%s: unreadable reply (attempt %d of %d): %s: %r",
                         self.model, attempt, PARSE_ATTEMPTS, e, text[:200])
                continue
            return Completion(content, calls, used_prompt, used_completion, model)
        raise LLMError(
            f"The model's reply could not be read as a function call after {PARSE_ATTEMPTS} tries "
            f"({error}); its last reply began: {text[:200]!r}",
            retryable=True,
        )

    def _request(self, request: dict[str, Any], counted_prompt: int) -> tuple[str, str, int, int]:
        """(text, model, prompt tokens, completion tokens) of one request."""
        if self._client is None:
            raise LLMError("This provider has no client to send requests with.")
        try:
            response = self._client.completions.create(**request)
        except LLMError:  # raised under the client by our own transport (engine/llm/public_only.py)
            raise
        except Exception as e:
            raise classify(e) from e
        if not response.choices:
            raise LLMError("The model returned no choices.", retryable=True)
        text = response.choices[0].text or ""
        usage = response.usage
        prompt_tokens = getattr(usage, "prompt_tokens", 0) or counted_prompt
        completion_tokens = getattr(usage, "completion_tokens", 0) or tokens.count(text)
        return text, response.model or self.model, prompt_tokens, completion_tokens
