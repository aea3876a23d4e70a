"""A slower, older search or listing never overwrites a newer one in the same browser tab (webapp/newest.py).

Gradio applies each event's outputs when it ends. These tests run the Archival and
Recall tabs' real handlers (taken from the built Blocks) side by side, with the
query embedding of one search held back by the fake OpenAI server, as a slow
embedder or a loaded machine would.
"""

from __future__ import annotations

import threading
import time
import types

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import app_home, built_app
from webapp.newest import Newest

SLOW = 1.5  # seconds the fake server holds back the embedding of a query that says "slowly"


def test_the_newest_turn_of_a_session_wins_and_sessions_are_apart():
    newest, tab, other = Newest(), types.SimpleNamespace(session_hash="tab"), types.SimpleNamespace(session_hash="x")
    first = newest.start(tab)
    theirs = newest.start(other)
    assert newest.still_newest(tab, first) and newest.still_newest(other, theirs)
    second = newest.start(tab)
    assert not newest.still_newest(tab, first)  # the older writer of this tab stands down ...
    assert newest.still_newest(tab, second) and newest.still_newest(other, theirs)  # ... nobody else does
    assert newest.still_newest(None, first)  # no session (a direct call): nothing to compare with
    newest.forget(tab)
    assert newest.still_newest(tab, first)  # a closed tab's turns are gone


def test_sessions_remembered_are_bounded():
    newest = Newest(sessions=2)
    tabs = [types.SimpleNamespace(session_hash=f"tab{i}") for i in range(3)]
    older = newest.start(tabs[0])
    newest.start(tabs[0])
    assert not newest.still_newest(tabs[0], older)
    newest.start(tabs[1]), newest.start(tabs[2])  # a third session: the longest idle (tab0) is forgotten ...
    assert newest.still_newest(tabs[0], older)  # ... so its writers simply draw


@pytest.fixture
def app(tmp_path, monkeypatch, embedder):
    def embed(text: str) -> list[float]:
        if "slowly" in text:
            time.sleep(SLOW)
        return embedder.embed([text])[0]

    fake = FakeOpenAI(embed=embed).start()
    try:
        with built_app(app_home(tmp_path, monkeypatch, fake)) as app:
            yield app
    finally:
        fake.stop()


def handler(demo, module: str, name: str):
    found = [f.fn for f in demo.fns.values() if f.fn is not None and f.fn.__module__ == f"webapp.{module}"
             and f.fn.__name__ == name]
    assert found, f"no {name} in webapp.{module}"
    return found[0]


def in_thread(fn, *args):
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", fn(*args)))
    thread.start()
    return thread, box


def texts(rows) -> list[str]:
    return [row[-1] for row in rows]


def test_an_older_archival_search_does_not_overwrite_the_next_agents_listing(app):
    api, demo = app
    ada, bob = api.create_agent("Ada"), api.create_agent("Bob")
    api.insert_archival("Ada", "Ada waters the garden slowly every morning.")
    api.insert_archival("Bob", "Bob keeps the boat keys in the red tin.")
    search, picked = handler(demo, "archival_tab", "on_search"), handler(demo, "archival_tab", "on_agent")
    tab = types.SimpleNamespace(session_hash="one-tab")

    thread, older = in_thread(search, "garden slowly", ada.id, tab)  # Ada's search, its embedding held back
    time.sleep(SLOW / 3)
    rows, status = picked("", bob.id, tab)  # meanwhile Bob is picked: his listing is drawn
    thread.join(timeout=30)
    assert texts(rows) == ["Bob keeps the boat keys in the red tin."] and status == "1 passage stored (all shown)."
    assert older["value"] == {"__type__": "update"}  # Ada's search ended last and leaves Bob's table alone

    # Another browser tab's search is nobody else's business: it is drawn.
    thread, theirs = in_thread(search, "garden slowly", ada.id, types.SimpleNamespace(session_hash="other-tab"))
    picked("", bob.id, tab)
    thread.join(timeout=30)
    rows, status = theirs["value"]
    assert texts(rows) == ["Ada waters the garden slowly every morning."]


def test_an_older_recall_search_does_not_overwrite_a_newer_one(app):
    api, demo = app
    ada = api.create_agent("Ada")
    from engine.store import messages

    messages.add(api.runtime.store, ada.id, "user", "I planted tulips slowly along the fence.")
    search = handler(demo, "recall_tab", "on_search")
    tab = types.SimpleNamespace(session_hash="one-tab")
    thread, older = in_thread(search, ada.id, "tulips slowly", "Words and meaning", "", "", tab)
    time.sleep(SLOW / 3)
    newer = search(ada.id, "fence", "Exact words", "", "", tab)
    thread.join(timeout=30)
    assert older["value"] == {"__type__": "update"}
    assert newer != {"__type__": "update"} and newer[0]
