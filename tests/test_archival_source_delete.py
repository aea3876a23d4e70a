"""Deleting a data source's passage from an agent's archival view, and the words the Archival tab uses for it."""

from __future__ import annotations

import pytest

from engine import MemGPT
from engine.config import EmbeddingConfig, LLMConfig
from engine.errors import NotFound
from engine.loaders.readers import Document

pytestmark = pytest.mark.both_stores


@pytest.fixture
def api(runtime, fake_openai):
    client = MemGPT(runtime=runtime)
    llm = LLMConfig("openai-compatible", "gpt-test", fake_openai.base_url)
    emb = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    for name in ("Ada", "Bob", "Cy"):
        client.create_agent(name, llm=llm, embedding=emb)
    client.load("manual", [Document("The blue widget needs a 9 volt battery."),
                           Document("The red widget runs on sunlight.")], embedding=emb)
    client.attach("Ada", "manual")
    client.attach("Bob", "manual")
    return client


def test_a_source_passage_is_deleted_for_every_attached_agent_only_when_asked(api):
    hit = api.search_archival("Ada", "blue widget battery").hits[0]
    assert hit.passage.source_name == "manual"
    with pytest.raises(NotFound):
        api.delete_archival("Ada", hit.passage.id)  # the agent's own passages only, unless asked
    with pytest.raises(NotFound):
        api.delete_archival("Cy", hit.passage.id, from_source=True)  # not attached: not Cy's to touch
    assert api.archival_count("Bob") == 2
    api.delete_archival("Ada", hit.passage.id, from_source=True)
    assert api.archival_count("Ada") == api.archival_count("Bob") == 1
    assert "blue" not in " ".join(h.passage.text for h in api.search_archival("Bob", "blue widget").hits)
    assert api.list_sources()[0].passages == 1


def test_get_passage_sees_what_the_agent_sees(api):
    own = api.insert_archival("Cy", "Cy's own note.")[0]
    source_passage = api.search_archival("Ada", "red widget").hits[0].passage
    assert api.get_passage("Ada", source_passage.id).source_name == "manual"
    assert api.get_passage("Cy", own).text == "Cy's own note."
    with pytest.raises(NotFound):
        api.get_passage("Cy", source_passage.id)
    with pytest.raises(NotFound):
        api.get_passage("Ada", own)
    assert api.list_sources()[0].agents == ("Ada", "Bob")


def test_the_confirmation_says_who_loses_a_source_passage(api):
    from webapp.archival_tab import confirmation

    source_passage = api.search_archival("Ada", "red widget").hits[0].passage
    text = confirmation(api, source_passage)
    assert f"Delete passage {source_passage.id} from the data source manual?" in text
    assert "every agent attached to it loses it" in text and "(attached: Ada, Bob)" in text
    own = api.get_passage("Cy", api.insert_archival("Cy", "Cy's *own* [note](javascript:x) <b>")[0])
    text = confirmation(api, own)
    assert "every agent" not in text and "The agent will no longer find it" in text
    assert "<b>" not in text and "\\*own\\*" in text and "\\[note\\]\\(javascript:x\\)" in text


def test_matches_are_words_relative_to_the_best_hit(api):
    from webapp.archival_tab import match

    hits = api.search_archival("Ada", "blue widget battery").hits
    labels = [match(h, max(x.score for x in hits)) for h in hits]
    assert labels[0].startswith("High (")
    assert all(label.split(" ")[0] in ("High", "Medium", "Low") for label in labels)
    assert match(hits[0], 0.0) == ""  # a listing has no match to speak of
