"""Embedders: turning text into vectors for archival memory.

The protocol is three things: a `name` (the model, recorded with every passage),
a `dimension`, and `embed(texts)`. Agents and sources record the name and
dimension they were created with; `engine/memory.py` refuses an embedder that
does not match them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from engine.config import EmbeddingConfig
from engine.errors import ConfigError, EmbeddingMismatch

if TYPE_CHECKING:
    from engine.llm.public_only import PublicOnly

BATCH_SIZE = 64


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class OpenAIEmbedder:
    """Any OpenAI-compatible `/embeddings` endpoint, through the `openai` client."""

    def __init__(self, model: str, dimension: int, client) -> None:
        self.name = model
        self.dimension = dimension
        self._client = client

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH_SIZE):
            # The API rejects empty strings; a lone space embeds as "nothing".
            batch = [t if t.strip() else " " for t in texts[start : start + BATCH_SIZE]]
            response = self._client.embeddings.create(model=self.name, input=batch)
            for item in sorted(response.data, key=lambda d: d.index):
                if len(item.embedding) != self.dimension:
                    raise EmbeddingMismatch(
                        f"{self.name} returned {len(item.embedding)}-d vectors; {self.dimension}-d expected."
                    )
                vectors.append(list(item.embedding))
        return vectors


def make_embedder(config: EmbeddingConfig, *, public_only: PublicOnly | None = None) -> Embedder:
    """The embedder an embedding config describes; `public_only`: a public app's connection rule."""
    if config.endpoint_type == "local":
        from engine import minilm

        if (config.model, config.dim) != (minilm.MODEL_NAME, minilm.DIMENSION):
            raise ConfigError(
                f"The embedded embedder is {minilm.MODEL_NAME} ({minilm.DIMENSION}-d); "
                f"{config.model} ({config.dim}-d) needs an embedding endpoint."
            )
        return minilm.shared_embedder()
    from engine.llm.client import make_client

    client = make_client(config.endpoint_type, config.endpoint, max_retries=3, public_only=public_only)
    return OpenAIEmbedder(config.model, config.dim, client)
