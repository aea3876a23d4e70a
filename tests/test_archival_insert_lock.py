"""An archival insert embeds its text before it holds the agent, so a long one does not turn chat away."""

from __future__ import annotations

import threading
import time

import pytest

from engine import MemGPT
from engine.config import EmbeddingConfig, LLMConfig
from engine.errors import EditConflict
from engine.memory import ArchivalMemory
from engine.store import agents as agents_store


@pytest.fixture
def api(runtime, fake_openai):
    client = MemGPT(runtime=runtime)
    client.create_agent("Ada", llm=LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url),
                        embedding=EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url))
    return client


def embedding_requests(fake) -> int:
    return sum(1 for path, _ in fake.requests if path.endswith("/embeddings"))


def test_the_text_is_embedded_while_a_turn_holds_the_agent_and_stored_after(api, fake_openai):
    store, ada = api.runtime.store, api.get_agent("Ada").id
    lock = store.agent_lock(ada)
    lock.acquire()  # a turn is running
    box: dict = {}
    inserting = threading.Thread(target=lambda: box.setdefault("ids", api.insert_archival("Ada", "word " * 3000)))
    try:
        inserting.start()
        deadline = time.monotonic() + 10
        while not embedding_requests(fake_openai) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert embedding_requests(fake_openai)  # embedded during the turn: it held the agent for all of it before
        assert api.archival_count("Ada") == 0  # but not written into it
    finally:
        lock.release()
    inserting.join(timeout=30)
    assert len(box["ids"]) > 1 and api.archival_count("Ada") == len(box["ids"])


def test_an_embedder_changed_meanwhile_stores_nothing(api, monkeypatch):
    store, ada = api.runtime.store, api.get_agent("Ada").id
    embed = ArchivalMemory.embed_many

    def embed_then_switch(self, items):
        rows = embed(self, items)
        # Another tab gives the agent a new embedder while the text was being embedded.
        agents_store.update(store, ada, embedding_config={"endpoint_type": "local", "model": "all-MiniLM-L6-v2",
                                                          "dim": 384, "endpoint": None})
        return rows

    monkeypatch.setattr(ArchivalMemory, "embed_many", embed_then_switch)
    with pytest.raises(EditConflict, match="embedder changed"):
        api.insert_archival("Ada", "The spare key is under the blue pot.")
    assert api.archival_count("Ada") == 0  # vectors of the old model are not mixed in
