"""A page load refreshes only the settings saved since the app was built, so it never overwrites typing.

Each page load runs events that fill the Chat tab's new-agent form and the Config
tab with the saved settings (a page built before a Config save would show stale
ones). Their reply lands after the page is up; a field typed into meanwhile got the
default back, and a fresh-clone CI run on a loaded machine created an agent at the
default address instead of the typed one. These tests run the app's real load
handlers, taken from the built Blocks.
"""

from __future__ import annotations

import pytest

from engine.config import LLMConfig
from tests.support.servers import app_home, built_app

SKIP = {"__type__": "update"}  # what gr.skip() sends: the field keeps what the page shows


@pytest.fixture
def app(tmp_path, monkeypatch, fake_openai):
    with built_app(app_home(tmp_path, monkeypatch, fake_openai)) as app:
        yield app


def page_load(demo) -> dict[str, object]:
    """What one page load sends, by field label (the label names the tab's field; the form's is "Model")."""
    sent: dict[str, object] = {}
    for fn in demo.fns.values():
        if (demo._id, "load") not in fn.targets or fn.fn is None or fn.fn.__module__ != "webapp.app":
            continue
        for block, value in zip(fn.outputs, fn.fn(), strict=True):
            label = getattr(block, "label", None) or type(block).__name__
            sent.setdefault(label, [])
            sent[label].append(value)  # type: ignore[union-attr]
    return sent


def test_a_page_load_with_nothing_saved_since_sends_nothing(app):
    _, demo = app
    sent = page_load(demo)
    assert "Base URL (servers; GGUF path for local)" in sent and "Agent" in sent  # the form's load is there
    changed = {label: values for label, values in sent.items() if any(v != SKIP for v in values)}
    assert changed == {}  # every field keeps what the page was built with, typing included


def test_what_was_saved_since_the_build_still_arrives(app):
    api, demo = app
    api.create_agent("Ada")
    api.save_defaults(llm=LLMConfig("openai-compatible", "gpt-newer", api.settings.llm.endpoint))
    sent = page_load(demo)
    assert sent["Model"] == ["gpt-newer", "gpt-newer"]  # the Config tab's field and the new-agent form's
    picker = sent["Agent"][0]
    assert [value for _, value in picker.choices] == ["Ada"]  # the new agent is offered
    assert sent["Base URL (servers; GGUF path for local)"] == [SKIP]  # unchanged: whatever was typed stays
    assert sent["Embedding model"] == [SKIP, SKIP]
