"""Reading untrusted files in a limited worker process: real files, a real worker.

A file made to make a parser crawl (html.parser is quadratic on `<a<a<a...`) is
skipped when it passes a small CPU or wall-clock limit, and the files beside it load;
ordinary files come back exactly as the in-process readers give them.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import time

import pytest

from engine import MemGPT
from engine.config import EmbeddingConfig
from engine.loaders import Document, Skipped, read_file
from engine.loaders.isolated import Limits, read_directory_isolated, read_files_isolated
from tests.support.pdf import make_pdf
from webapp.loading import load_into_source

# In-process, this takes html.parser about 4 s of CPU (quadratic: twice as long, four times the time).
CRAWLING_HTML = "<html>" + "<a" * 100_000
QUICK = Limits(cpu_seconds=1)


@pytest.fixture
def uploads(tmp_path):
    (tmp_path / "slow.html").write_text(CRAWLING_HTML, encoding="utf-8")
    (tmp_path / "good.txt").write_text("Swifts sleep on the wing.", encoding="utf-8")
    (tmp_path / "deep.json").write_bytes(b"[" * 5000 + b"]" * 5000)
    return tmp_path


def test_a_file_past_the_cpu_limit_is_skipped_and_the_next_one_loads(uploads):
    started = time.monotonic()
    found = list(read_files_isolated([uploads / "slow.html", uploads / "good.txt"], limits=QUICK))
    assert found[0] == Skipped(str((uploads / "slow.html").resolve()), "took longer than 1 s to read: skipped")
    assert isinstance(found[1], Document) and found[1].text == "Swifts sleep on the wing."
    assert len(found) == 2
    assert time.monotonic() - started < 15  # the limit stopped it, not the parser's end


def test_the_wall_clock_stops_a_file_the_cpu_limit_has_not_yet(uploads):
    found = list(read_files_isolated([(uploads / "slow.html", "slow.html"), (uploads / "good.txt", "good.txt")],
                                     limits=Limits(cpu_seconds=30, wall_seconds=1.5)))
    assert found[0] == Skipped("slow.html", "took longer than 1.5 s to read: skipped")
    assert [d.metadata["source"] for d in found[1:]] == ["good.txt"]


def test_ordinary_files_read_identically_in_the_worker(tmp_path):
    (tmp_path / "report.pdf").write_bytes(
        make_pdf([["The quarterly report mentions the walrus colony."], ["Page two counts the penguins."]]))
    (tmp_path / "page.html").write_text(
        "<html><head><title>Tide tables</title></head><body><h1>Tides</h1><p>High tide at noon.</p></body></html>",
        encoding="utf-8")
    (tmp_path / "notes.txt").write_text("Caf\u00e9 notes, in UTF-8.\n\nA second paragraph.", encoding="utf-8")
    (tmp_path / "people.csv").write_text("name,role\nAda,engineer\n", encoding="utf-8")
    (tmp_path / "config.json").write_text(json.dumps({"server": {"port": 8080}}), encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    files = sorted(tmp_path.iterdir())
    here = [item for path in files for item in read_file(path)]
    assert len([i for i in here if isinstance(i, Document)]) == 6  # two PDF pages, four files
    assert list(read_files_isolated(files)) == here
    assert list(read_directory_isolated(tmp_path)) == here


def test_the_data_home_is_refused_by_the_parent_whose_registry_knows_it(store, settings):
    # The worker's registry of live files is empty: only this process knows the store is open.
    database = settings.home / "memgpt.db"
    found = list(read_files_isolated([database]))
    assert len(found) == 1 and isinstance(found[0], Skipped)
    assert found[0].reason.startswith("not read: it is inside the app's data home")


@pytest.fixture
def api(runtime, fake_openai):
    return MemGPT(runtime=runtime)


def test_the_web_load_skips_the_bad_uploads_and_reports_reading_each_file(api, fake_openai, uploads):
    embedding = EmbeddingConfig("openai-compatible", "test-hash", 64, fake_openai.base_url)
    shown = []
    report = load_into_source(api, "mixed", [uploads / "slow.html", uploads / "deep.json", uploads / "good.txt"],
                              None, embedding, lambda value, desc="": shown.append(desc), limits=QUICK)
    assert report.splitlines() == [
        "**mixed: 1 new passage(s) from 1 input(s); 0 already stored; 2 skipped**",
        "- skipped slow.html: took longer than 1 s to read: skipped",
        "- skipped deep.json: JSON nested too deeply to read",
    ]
    assert shown[:3] == ["reading slow.html", "reading deep.json", "reading good.txt"]
    assert [s.name for s in api.list_sources()] == ["mixed"]
    assert api.list_sources()[0].passages == 1


def test_only_items_are_unpickled_from_a_worker():
    # A worker that parsed hostile input is not trusted to send code into the server.
    from engine.loaders.isolated import _ItemUnpickler

    items = [Document("text", {"source": "a.txt", "page": 1, "ratio": 0.5, "tags": ["x"]}), Skipped("b", "empty")]
    assert _ItemUnpickler(io.BytesIO(pickle.dumps(items))).load() == items

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    with pytest.raises(pickle.UnpicklingError, match="not an item"):
        _ItemUnpickler(io.BytesIO(pickle.dumps([Payload()]))).load()


def test_a_file_past_the_memory_limit_is_skipped_and_the_next_one_loads(uploads):
    # 13 MB of JSON objects become about a GB of dicts and lines; the worker itself needs under 200 MiB.
    (uploads / "objects.json").write_text("[" + ",".join(f'{{"a":{i}}}' for i in range(1_000_000)) + "]")
    found = list(read_files_isolated([(uploads / "objects.json", "objects.json"), (uploads / "good.txt", "good.txt")],
                                     limits=Limits(memory_bytes=320 * 2**20)))
    assert found[0] == Skipped("objects.json", "needs more than 320 MiB of memory to read: skipped")
    assert [d.metadata["source"] for d in found[1:]] == ["good.txt"]


def test_the_worker_runs_below_the_server_in_the_scheduler(uploads):
    from engine.loaders.isolated import WORKER_NICENESS, _Worker

    worker = _Worker(Limits(), 1)
    try:
        assert worker.read(uploads / "good.txt", "good.txt", 1_000_000, Limits())[0].text  # it has started
        # Several crawling uploads at once then take the cores the server does not need.
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS)  # 19 is the lowest priority
        assert os.getpriority(os.PRIO_PROCESS, worker.process.pid) == expected
    finally:
        worker.close()
